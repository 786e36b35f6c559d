"""Alert rules: functions that read the history of one finished execution and return alerts.

Each rule takes a ``History`` (the store, a snapshot of it, or the workflow's recent-runs file
a runner keeps, ``store/recent.py``), the finished ``Execution`` (with its last log lines) and
a ``RuleConfig``, and returns a list of ``Alert`` (empty when the rule does not fire). Rules
keep no counters: every figure comes from the history's named reads.

``evaluate_execution`` runs the rules a workflow's ``notifications`` enable and also says which
conditions are known to be over (what ends an episode, ``episodes.py``); ``evaluate_rules``
does it for an execution read from the store. ``load_alert_config`` reads the ``alerts``
section of ``workflows/config.json``. Log lines and messages put into an alert are redacted:
the value of any environment variable whose name looks secret (PASSWORD, TOKEN, KEY, SECRET)
is replaced by ``***``.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError
from ..execution.states import State
from ..plugins import ALERT_CHANNELS
from .alert import Alert

if TYPE_CHECKING:
    from ..definition.model import Notifications, Workflow
    from ..execution.records import Execution
    from ..store import ExecutionStore
    from .history import History


# A cancelled run was stopped on purpose: it counts against the success rate but is no failure
# to alert on by itself.
FAILED_RUN = frozenset({State.FAILED, State.TIMED_OUT, State.CRASHED})
LOG_LINES = 20
SECRET_NAME = re.compile(r"PASSWORD|PASSWD|TOKEN|KEY|SECRET", re.IGNORECASE)
# Very short values ("1", "no") would redact ordinary text everywhere and hide nothing.
MIN_SECRET_LENGTH = 4


@dataclass(frozen=True)
class RuleConfig:
    success_window: int = 20
    success_threshold: float = 0.9
    min_runs: int = 5
    slow_factor: float = 2.0
    slow_window: int = 20
    # Against a median, a run must also be this many seconds slower: a 5 ms workflow taking
    # 12 ms is scheduling noise, not a slow run. An explicit expected_duration has no floor.
    slow_min_excess: float = 0.25


@dataclass(frozen=True)
class DeliveryConfig:
    """How alerts are delivered (``outbox.py``): ``attempts`` per channel before one is
    dropped, the wait after the first failed one (``backoff`` seconds, doubling, at most
    ``max_backoff``), and how long the process that raised an alert waits for its delivery
    before leaving the rest to the next process (``deadline``)."""

    attempts: int = 10
    backoff: float = 30.0
    max_backoff: float = 3600.0
    deadline: float = 0.8

    def wait_after(self, attempts: int) -> float:
        """Seconds to wait before the next attempt, ``attempts`` having failed."""
        return min(self.backoff * 2 ** max(attempts - 1, 0), self.max_backoff)


@dataclass(frozen=True)
class AlertConfig:
    enabled: bool = True
    channels: list[str] = field(default_factory=lambda: ["console"])
    rules: RuleConfig = field(default_factory=RuleConfig)
    # Seconds between reminders of an episode still firing; None: no reminders.
    remind_every: float | None = None
    delivery: DeliveryConfig = field(default_factory=DeliveryConfig)


# -- configuration ---------------------------------------------------------------------------


def load_alert_config(project_root: str | Path) -> AlertConfig:
    """The ``alerts`` section of the project's configuration file (defaults if absent).

    Keys: enabled (bool), channels (list of names), success_rate_threshold (0..1),
    success_window (int >= 1), slow_factor (> 1), remind_every (a duration: 3600, "4h"; null:
    never), delivery_attempts (int >= 1), retry_backoff (a duration). Raises ConfigError
    naming the bad key.
    """
    from ..project import config_file, read_config

    path = config_file(Path(project_root))
    section = read_config(Path(project_root)).get("alerts")
    if section is None:
        return AlertConfig()
    if not isinstance(section, dict):
        raise ConfigError(f"{path}: 'alerts' must be an object")
    return _alert_config(section, path)


def _alert_config(section: dict[str, Any], path: Path) -> AlertConfig:
    def bad(key: str, expected: str) -> ConfigError:
        return ConfigError(f"{path}: 'alerts.{key}' must be {expected}, got {section[key]!r}")

    enabled = section.get("enabled", True)
    if not isinstance(enabled, bool):
        raise bad("enabled", "true or false")
    channels = section.get("channels", ["console"])
    if not isinstance(channels, list) or not all(isinstance(c, str) for c in channels):
        raise bad("channels", "a list of channel names")
    for name in channels:
        if name.strip().lower() not in ALERT_CHANNELS:
            known = ", ".join(ALERT_CHANNELS.names())
            raise bad("channels", f"a list of channel names ({known})")
    defaults = RuleConfig()
    threshold = section.get("success_rate_threshold", defaults.success_threshold)
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)):
        raise bad("success_rate_threshold", "a number between 0 and 1")
    if not 0 <= threshold <= 1:
        raise bad("success_rate_threshold", "a number between 0 and 1")
    window = section.get("success_window", defaults.success_window)
    if isinstance(window, bool) or not isinstance(window, int) or window < 1:
        raise bad("success_window", "a whole number of runs (>= 1)")
    factor = section.get("slow_factor", defaults.slow_factor)
    if isinstance(factor, bool) or not isinstance(factor, (int, float)) or factor <= 1:
        raise bad("slow_factor", "a number above 1")
    rules = RuleConfig(
        success_window=window, success_threshold=float(threshold), slow_factor=float(factor)
    )
    remind = section.get("remind_every")
    remind_every = None if remind is None else _seconds(section, "remind_every", bad)
    attempts = section.get("delivery_attempts", DeliveryConfig.attempts)
    if isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 1:
        raise bad("delivery_attempts", "a whole number of attempts (>= 1)")
    backoff = DeliveryConfig.backoff
    if "retry_backoff" in section:
        backoff = _seconds(section, "retry_backoff", bad)
    delivery = DeliveryConfig(attempts=attempts, backoff=backoff)
    return AlertConfig(
        enabled=enabled, channels=list(channels), rules=rules, remind_every=remind_every or None,
        delivery=delivery,
    )  # fmt: skip


def _seconds(section: dict[str, Any], key: str, bad: Any) -> float:
    from ..definition.durations import UNIT_SECONDS, parse_duration

    try:
        return parse_duration(section[key], unit=UNIT_SECONDS)
    except ValueError:
        raise bad(key, 'a duration (seconds, or "30s", "4h")') from None


# -- redaction -------------------------------------------------------------------------------


def secret_values(env: Mapping[str, str] | None = None) -> list[str]:
    """Values of environment variables whose names look secret, longest first."""
    env = os.environ if env is None else env
    values = {v for k, v in env.items() if SECRET_NAME.search(k) and len(v) >= MIN_SECRET_LENGTH}
    return sorted(values, key=len, reverse=True)


def redact(text: str, secrets: Iterable[str]) -> str:
    for value in secrets:
        text = text.replace(value, "***")
    return text


# -- rules -----------------------------------------------------------------------------------


def workflow_failed(store: History, execution: Execution, config: RuleConfig) -> list[Alert]:
    """The run failed, timed out or crashed: name the first failed task and its last lines."""
    if execution.status not in FAILED_RUN:
        return []
    failed = [t for t in execution.tasks.values() if t.status.is_failure]
    # In start order: the store's records come so, a runner's own in declaration order.
    failed.sort(key=lambda t: (t.started_at is None, t.started_at or 0.0))
    first = failed[0] if failed else None
    where = f"task '{first.id}'" if first else "the run"
    cause = (first.error if first else None) or execution.error or str(execution.status)
    return [
        _alert(
            "workflow_failed",
            execution,
            title=f"workflow '{execution.workflow}' failed",
            summary=f"{where} {execution.status}: {cause}",
            failing_task=first.id if first else None,
            log_tail=list(first.log_tail[-LOG_LINES:]) if first else [],
            figures={
                "status": str(execution.status),
                "failed_tasks": [t.id for t in failed],
                "duration_ms": _ms(execution.duration),
            },
        )
    ]


def workflow_succeeded(store: History, execution: Execution, config: RuleConfig) -> list[Alert]:
    """An info alert for a successful run (only when ``notifications.on_completion``)."""
    if execution.status is not State.SUCCEEDED:
        return []
    duration = _ms(execution.duration)
    return [
        _alert(
            "workflow_succeeded",
            execution,
            title=f"workflow '{execution.workflow}' succeeded",
            summary=f"{len(execution.tasks)} tasks, {(duration or 0) / 1000:.1f} s",
            severity="info",
            figures={"status": "succeeded", "duration_ms": duration},
        )
    ]


def success_rate(store: History, execution: Execution, config: RuleConfig) -> list[Alert]:
    """Success rate of the workflow's last N finished runs (up to this one) below threshold."""
    statuses = store.finished_statuses(
        execution.workflow, up_to=execution.id, limit=config.success_window
    )
    window = len(statuses)
    if window < config.min_runs:
        return []
    succeeded = statuses.count("succeeded")
    rate = succeeded / window
    if rate >= config.success_threshold:
        return []
    return [
        _alert(
            "success_rate",
            execution,
            title=f"workflow '{execution.workflow}' success rate {rate:.0%}",
            summary=(
                f"{succeeded} of the last {window} runs succeeded "
                f"(threshold {config.success_threshold:.0%})"
            ),
            severity="warning",
            figures={
                "window": window,
                "succeeded": succeeded,
                "failed": window - succeeded,
                "success_rate": rate,
                "threshold": config.success_threshold,
            },
        )
    ]


def slow_run(
    store: History,
    execution: Execution,
    config: RuleConfig,
    expected_duration: float | None = None,
) -> list[Alert]:
    """Duration above ``slow_factor`` x expected_duration (seconds) or x the workflow's
    baseline, the median (p50) of its last successful runs before this one (needs at least 3
    of them, and the run must be ``slow_min_excess`` seconds over it). The alert says by how
    much: the ratio to the baseline and the time over its p50 and p95."""
    verdict = _slowness(store, execution, config, expected_duration)
    if verdict is None or not verdict["slow"]:
        return []
    duration, baseline, kind = verdict["duration_ms"], verdict["baseline_ms"], verdict["kind"]
    figures: dict[str, Any] = {
        "duration_ms": duration,
        "baseline_ms": baseline,
        "baseline_kind": kind,
        "factor": config.slow_factor,
        "ratio": duration / baseline,
        "over_ms": duration - baseline,
    }
    if kind == "expected":
        against = f"its expected duration of {baseline / 1000:.2f} s"
    else:
        p95 = verdict["p95_ms"]
        figures.update(p50_ms=baseline, p95_ms=p95, over_p95_ms=duration - p95,
                       baseline_runs=verdict["runs"])  # fmt: skip
        against = (
            f"its median of {baseline / 1000:.2f} s (p50; p95 {p95 / 1000:.2f} s, over the "
            f"last {verdict['runs']} successful runs): {(duration - baseline) / 1000:.2f} s "
            f"over the p50, {(duration - p95) / 1000:.2f} s over the p95"
        )
    return [
        _alert(
            "slow_run",
            execution,
            title=f"workflow '{execution.workflow}' ran slow",
            summary=f"took {duration / 1000:.2f} s, {duration / baseline:.1f}x {against}",
            severity="warning",
            figures=figures,
        )
    ]


def _slowness(
    store: History, execution: Execution, config: RuleConfig, expected: float | None
) -> dict[str, Any] | None:
    """Whether the run was slow, against what; None when there is nothing to compare."""
    duration = _ms(execution.duration)
    if duration is None:
        return None
    verdict: dict[str, Any] = {"duration_ms": duration}
    if expected is not None:
        verdict.update(baseline_ms=expected * 1000.0, kind="expected")
    else:
        durations = store.success_durations(
            execution.workflow, before=execution.id, limit=config.slow_window
        )
        if len(durations) < 3:
            return None
        verdict.update(baseline_ms=quantile(durations, 0.5), p95_ms=quantile(durations, 0.95),
                       kind="median", runs=len(durations))  # fmt: skip
    baseline = verdict["baseline_ms"]
    if baseline <= 0:
        return None
    slow = duration > config.slow_factor * baseline
    if verdict["kind"] == "median" and duration - baseline < config.slow_min_excess * 1000.0:
        slow = False
    verdict["slow"] = slow
    return verdict


def quantile(values: list[float], q: float) -> float:
    """Continuous quantile (linear interpolation, numpy's default; the index's
    ``quantile_cont``)."""
    ordered = sorted(values)
    position = (len(ordered) - 1) * q
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


# -- evaluation ------------------------------------------------------------------------------


@dataclass
class Evaluation:
    """What the rules say of one finished run: the alerts they raise, and for each episodic
    rule whose condition is known to be over, the "resolved" alert to send should an episode
    of it be open (``episodes.py``)."""

    alerts: list[Alert] = field(default_factory=list)
    resolved: dict[str, Alert] = field(default_factory=dict)


def evaluate_rules(
    store: ExecutionStore,
    execution_id: str,
    config: RuleConfig,
    *,
    notifications: Notifications | None = None,
    expected_duration: float | None = None,
    env: Mapping[str, str] | None = None,
    workflow: Workflow | None = None,
) -> list[Alert]:
    """Every alert the rules raise for one finished execution read from the store, redacted.

    ``notifications`` (the workflow's; None = defaults) switches workflow_failed
    (on_failure, default on) and workflow_succeeded (on_completion, default off).
    A ``workflow`` with its own ``alerts`` gets those instead of workflow_failed,
    success_rate and slow_run (as the original format's alert list replaced its defaults).
    A running execution yields no alert.
    """
    with store.snapshot() as view:  # one open of the index for every rule
        execution = view.get_execution(execution_id, logs=LOG_LINES)
        return evaluate_execution(
            view, execution, config, notifications=notifications,
            expected_duration=expected_duration, env=env, workflow=workflow,
        ).alerts  # fmt: skip


def evaluate_execution(
    history: History,
    execution: Execution,
    config: RuleConfig,
    *,
    notifications: Notifications | None = None,
    expected_duration: float | None = None,
    env: Mapping[str, str] | None = None,
    workflow: Workflow | None = None,
) -> Evaluation:
    """``evaluate_rules`` for an execution in hand (the runner's own), its workflow's past
    read from ``history``; also what each episodic rule would say to resolve an episode."""
    result = Evaluation()
    if not execution.status.is_terminal:
        return result
    own_rules = workflow is not None and workflow.alerts is not None
    on_failure = notifications.on_failure if notifications is not None else True
    on_completion = notifications.on_completion if notifications is not None else False
    if on_failure and not own_rules:
        result.alerts += workflow_failed(history, execution, config)
        if execution.status is State.SUCCEEDED:
            result.resolved["workflow_failed"] = _resolved(
                "workflow_failed", execution, f"workflow '{execution.workflow}' succeeded again",
                "the run succeeded", {"status": "succeeded"},
            )  # fmt: skip
    if on_completion:
        result.alerts += workflow_succeeded(history, execution, config)
    if workflow is not None and own_rules:
        from .workflow_alerts import workflow_alerts  # its condition parser: only when used

        result.alerts += workflow_alerts(history, execution, workflow, config.success_window)
    else:
        result.alerts += _rate_rule(history, execution, config, result)
        result.alerts += _slow_rule(history, execution, config, expected_duration, result)
    secrets = secret_values(env)
    result.alerts = [_redacted(alert, secrets) for alert in result.alerts]
    return result


def _rate_rule(
    history: History, execution: Execution, config: RuleConfig, result: Evaluation
) -> list[Alert]:
    alerts = success_rate(history, execution, config)
    if alerts:
        return alerts
    statuses = history.finished_statuses(
        execution.workflow, up_to=execution.id, limit=config.success_window
    )
    if len(statuses) >= config.min_runs:  # the rate is known and not below the threshold
        rate = statuses.count("succeeded") / len(statuses)
        result.resolved["success_rate"] = _resolved(
            "success_rate", execution,
            f"workflow '{execution.workflow}' success rate back to {rate:.0%}",
            f"{statuses.count('succeeded')} of the last {len(statuses)} runs succeeded "
            f"(threshold {config.success_threshold:.0%})",
            {"window": len(statuses), "success_rate": rate,
             "threshold": config.success_threshold},
        )  # fmt: skip
    return []


def _slow_rule(
    history: History,
    execution: Execution,
    config: RuleConfig,
    expected: float | None,
    result: Evaluation,
) -> list[Alert]:
    verdict = _slowness(history, execution, config, expected)
    if verdict is None:
        return []
    if verdict["slow"]:
        return slow_run(history, execution, config, expected)
    duration, baseline = verdict["duration_ms"], verdict["baseline_ms"]
    result.resolved["slow_run"] = _resolved(
        "slow_run", execution, f"workflow '{execution.workflow}' runs at its usual speed again",
        f"took {duration / 1000:.2f} s, {duration / baseline:.1f}x its "
        f"{'expected duration' if verdict['kind'] == 'expected' else 'median'} "
        f"of {baseline / 1000:.2f} s",
        {"duration_ms": duration, "baseline_ms": baseline, "baseline_kind": verdict["kind"]},
    )  # fmt: skip
    return []


def _resolved(
    rule: str, execution: Execution, title: str, summary: str, figures: dict[str, Any]
) -> Alert:
    return _alert(rule, execution, title=title, summary=summary, severity="info",
                  figures=figures, state="resolved")  # fmt: skip


def _redacted(alert: Alert, secrets: list[str]) -> Alert:
    if not secrets:
        return alert
    alert.title = redact(alert.title, secrets)
    alert.summary = redact(alert.summary, secrets)
    alert.log_tail = [redact(line, secrets) for line in alert.log_tail]
    return alert


def _alert(rule: str, execution: Execution, **fields: Any) -> Alert:
    return Alert(
        rule=rule,
        workflow=execution.workflow,
        execution_id=execution.id,
        at=time.time(),
        **fields,
    )


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000.0, 3)
