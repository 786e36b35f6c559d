"""Episodes: one alert when a condition starts, reminders while it lasts, one when it ends.

The rules ``workflow_failed``, ``success_rate`` and ``slow_run`` describe conditions of a
workflow (its last run failed, its success rate is below the threshold, its last run was slow).
An episode of (workflow, rule) opens with the first run that raises the rule's alert: that
alert is sent ("firing"). Later runs that raise it again send nothing, unless
``remind_every`` seconds have passed since the last message of the episode (a reminder, still
"firing"). The first run for which the rule says its condition is over (``Evaluation.resolved``)
closes the episode and sends a "resolved" alert. Other alerts (``workflow_succeeded``, a
workflow's own ``alerts``) are about one run each and always go.

Episodes are shared by every process on the store: their state is ``<store>/alerts/episodes.json``,
read and replaced under an ``flock`` on ``<store>/alerts/episodes.lock``; the caller's work that
must happen with the decision (putting the alerts in the outbox) runs under the same lock.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..store.atomic import replace_json
from ..store.lock import IndexLock

if TYPE_CHECKING:
    from .alert import Alert
    from .rules import Evaluation

EPISODIC = frozenset({"workflow_failed", "success_rate", "slow_run"})
FOLDER = "alerts"
STATE_FILE = "episodes.json"
LOCK_FILE = "episodes.lock"


def open_episodes(store_path: str | Path, workflow: str | None = None) -> list[dict[str, Any]]:
    """The episodes open now (``workflow alerts`` shows them), oldest first."""
    state = _read(Path(store_path) / FOLDER / STATE_FILE)
    found = [
        {"workflow": name, "rule": rule, **episode}
        for name, rules in state.items()
        if workflow is None or name == workflow
        for rule, episode in rules.items()
    ]
    return sorted(found, key=lambda e: e.get("since") or 0)


def advance(
    store_path: str | Path,
    workflow: str,
    evaluation: Evaluation,
    *,
    remind_every: float | None,
    now: float,
    then: Callable[[list[Alert]], None] | None = None,
) -> list[Alert]:
    """The alerts of ``evaluation`` to send, episodes applied; the shared state is updated.

    ``then(alerts)`` runs under the episodes' lock, before the new state is written, so that
    what it records (the outbox) and the state agree even when processes race.
    """
    folder = Path(store_path) / FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    with _locked(folder):
        state = _read(folder / STATE_FILE)
        before = json.dumps(state, sort_keys=True)
        episodes = state.setdefault(workflow, {})
        send = [
            a for a in evaluation.alerts if _goes(a, episodes, remind_every, now)
        ] + _resolutions(episodes, evaluation, now)
        if then is not None and send:
            then(send)
        if not episodes:
            del state[workflow]
        if json.dumps(state, sort_keys=True) != before:
            _write(folder / STATE_FILE, state)
    return send


def _goes(alert: Alert, episodes: dict[str, Any], remind_every: float | None, now: float) -> bool:
    """Whether ``alert`` is sent, updating its rule's episode."""
    if alert.rule not in EPISODIC:
        return True
    episode = episodes.get(alert.rule)
    if episode is None:
        episodes[alert.rule] = {
            "since": alert.at, "execution_id": alert.execution_id, "title": alert.title,
            "last_sent": now, "runs": 1, "reminders": 0,
        }  # fmt: skip
        return True
    episode["runs"] = int(episode.get("runs", 1)) + 1
    if remind_every is None or now - float(episode.get("last_sent", 0)) < remind_every:
        return False
    episode["last_sent"] = now
    episode["reminders"] = int(episode.get("reminders", 0)) + 1
    alert.reminder = True
    since = _clock(float(episode["since"]))
    alert.title = f"{alert.title} (still, since {since})"
    alert.figures = {**alert.figures, **_facts(episode, now)}
    return True


def _resolutions(episodes: dict[str, Any], evaluation: Evaluation, now: float) -> list[Alert]:
    """The "resolved" alerts of the episodes this run ends (they are closed)."""
    ended = []
    for rule, alert in evaluation.resolved.items():
        episode = episodes.pop(rule, None)
        if episode is None:
            continue
        alert.summary = (
            f"{alert.summary}. Firing since {_clock(float(episode['since']))} "
            f"({episode.get('runs', 1)} run(s)), raised by execution {episode['execution_id']}: "
            f"{episode.get('title', '')}"
        )
        alert.figures = {**alert.figures, **_facts(episode, now)}
        ended.append(alert)
    return ended


def _facts(episode: dict[str, Any], now: float) -> dict[str, Any]:
    return {
        "firing_since": _clock(float(episode["since"])),
        "firing_for_s": round(now - float(episode["since"]), 1),
        "firing_runs": episode.get("runs", 1),
        "raised_by": episode.get("execution_id"),
    }


def _clock(at: float) -> str:
    return datetime.fromtimestamp(at).strftime("%Y-%m-%d %H:%M:%S")


def _read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError):
        # A damaged file loses open episodes: at worst one more "firing" message each.
        return {}
    return data if isinstance(data, dict) else {}


def _write(path: Path, state: dict[str, Any]) -> None:
    replace_json(path, state, durable=True, sort_keys=True)


@contextmanager
def _locked(folder: Path) -> Iterator[None]:
    with IndexLock(folder / LOCK_FILE, timeout=10.0):
        yield
