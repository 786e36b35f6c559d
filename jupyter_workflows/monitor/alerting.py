"""``AlertManager``: an event sink that turns finished runs into alerts, sent once each.

On ``RunEnded`` the manager evaluates the rules (``rules.py``) against the store, then
delivers each new alert to its channels and records the outcome. All of that happens on a
worker thread (``background=True``) so the run's loop never waits for a rule or a channel,
and nothing raised there reaches the run.

Sent (or failed) alerts are recorded in ``<store>/alerts.jsonl``, one JSON object a line:
``{key, rule, workflow, execution_id, severity, title, ok, channels: [{channel, ok, attempts,
error}], at}``. The file is what dedupes: an alert whose key is in it is never sent again,
restarts included. It is re-read under an ``flock`` on ``<store>/alerts.lock`` held while
sending, so two processes (or two managers) cannot both send the same alert. Errors of the
manager itself are recorded there too (``rule: "internal"``, ``ok: false``).
"""

from __future__ import annotations

import json
import logging
import os
import queue
import sys
import threading
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..execution.events import Event, RunEnded, RunStarted
from ..store.lock import IndexLock
from .rules import AlertConfig, evaluate_rules, redact, secret_values

if TYPE_CHECKING:
    from ..definition.model import Notifications, Workflow
    from ..store import ExecutionStore
    from .alert import Alert, Channel

log = logging.getLogger(__name__)

ALERTS_FILE = "alerts.jsonl"
LOCK_FILE = "alerts.lock"
_STOP = object()


class AlertManager:
    """Evaluates alert rules for finished runs and sends each alert once.

    ``channels``: where alerts go; by default those named by each workflow's
    ``notifications.channels``, else by ``config.channels``. Workflows whose definition the
    manager cannot load from the run's file (a run of a dict or model) can be registered
    with ``add_workflow`` so their ``notifications`` and ``expected_duration`` apply.
    Call ``close()`` before the process exits so pending deliveries finish.

    ``defer=True`` holds finished runs until ``close()`` evaluates them in the caller's
    thread: a command line prints its own summary first and its alerts after, never mixed.
    """

    def __init__(
        self,
        store: ExecutionStore,
        *,
        config: AlertConfig,
        channels: list[Channel] | None = None,
        background: bool = True,
        defer: bool = False,
        attempts: int = 3,
        retry_delay: float = 0.5,
        env: Mapping[str, str] | None = None,
        project_root: Path | None = None,
    ):
        self.store = store
        # Where the channels' credentials may also come from (its secret sources), if known.
        self.project_root = project_root
        self.config = config
        self.channels = channels
        self.background = background
        self.defer = defer
        self._deferred: list[tuple[str, RunStarted | None]] = []
        self.attempts = attempts
        self.retry_delay = retry_delay
        self.env = env
        self.workflows: dict[str, Workflow] = {}
        self.path = Path(store.path) / ALERTS_FILE
        self._sent = _recorded_keys(self.path)
        self._started: dict[str, RunStarted] = {}
        self._queue: queue.Queue[Any] = queue.Queue()
        self._worker: threading.Thread | None = None
        self._guard = threading.Lock()

    def add_workflow(self, workflow: Workflow) -> None:
        """Use this definition's notifications and expected_duration for its runs."""
        self.workflows[workflow.name] = workflow

    # -- the event sink --------------------------------------------------------------------

    def __call__(self, event: Event) -> None:
        """Event sink: on RunEnded, schedule evaluation of that execution; never blocks."""
        if isinstance(event, RunStarted):
            self._started[event.execution_id] = event
            if self.config.enabled:
                _warm_up()
        elif isinstance(event, RunEnded) and self.config.enabled:
            started = self._started.pop(event.execution_id, None)
            if self.defer:
                self._deferred.append((event.execution_id, started))
            elif self.background:
                self._ensure_worker()
                self._queue.put((event.execution_id, started))
            else:
                self._process(event.execution_id, started)

    def close(self, timeout: float = 10) -> None:
        """Wait up to ``timeout`` seconds for pending evaluations and deliveries."""
        deferred, self._deferred = self._deferred, []
        for item in deferred:
            self._process(*item)
        with self._guard:
            worker, self._worker = self._worker, None
        if worker is not None:
            self._queue.put(_STOP)
            worker.join(timeout)

    def _ensure_worker(self) -> None:
        with self._guard:
            if self._worker is None:
                self._worker = threading.Thread(
                    target=self._work, name="jupyter-workflows-alerts", daemon=True
                )
                self._worker.start()

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            self._process(*item)

    def _process(self, execution_id: str, started: RunStarted | None) -> None:
        """Evaluate and dispatch one execution; any error is recorded, never raised."""
        try:
            workflow = self._workflow(started)
            notifications = workflow.notifications if workflow is not None else None
            env = self._secret_sources(workflow)
            alerts = self.evaluate(
                execution_id,
                notifications=notifications,
                expected_duration=workflow.expected_duration if workflow is not None else None,
                env=env,
                workflow=workflow,
            )
            channels = self._channels(notifications)
            for alert in alerts:  # a workflow's own alert rule names its channels
                chosen = self._named_channels(alert.channels) if alert.channels else channels
                self.dispatch([alert], channels=chosen, env=env)
        except Exception as exc:  # the run must never see an alerting failure
            log.warning("alerts for execution %s failed: %s", execution_id, exc)
            self._record_internal(execution_id, exc)

    def _secret_sources(self, workflow: Workflow | None) -> dict[str, str]:
        """Where secret-looking values come from: the manager's environment (the process's,
        plus the run's own --env values when the caller passed them) and the workflow's
        ``environment`` maps, whose values reach the tasks too."""
        env = dict(os.environ if self.env is None else self.env)
        if workflow is not None:
            env.update(workflow.defaults.environment)
            for task in workflow.tasks:
                env.update(getattr(task, "environment", None) or {})
        return env

    def _workflow(self, started: RunStarted | None) -> Workflow | None:
        if started is None:
            return None
        if started.workflow in self.workflows:
            return self.workflows[started.workflow]
        if not started.file:
            return None
        from ..definition.loader import load_workflow

        root = Path(started.project_root) if started.project_root else None
        try:
            return load_workflow(Path(started.file), project_root=root)
        except Exception as exc:  # an edited or removed file: alert with the defaults
            log.info("cannot reload %s for its notifications: %s", started.file, exc)
            return None

    def _channels(self, notifications: Notifications | None) -> list[Channel]:
        names = notifications.channels if notifications is not None else self.config.channels
        return self._named_channels(names)

    def _named_channels(self, names: list[str]) -> list[Channel]:
        if self.channels is not None:
            return self.channels
        from .alert import ChannelError
        from .channels import CREDENTIALS, make_channel

        env: Mapping[str, str] | None = None
        if self.project_root is not None:
            from ..secrets.credentials import credentials

            wanted = [n for name in names for n in CREDENTIALS.get(name.strip().lower(), ())]
            env = credentials(self.project_root, wanted, warn=log.warning)
        channels: list[Channel] = []
        for name in dict.fromkeys(names):
            try:
                channels.append(make_channel(name, env))
            except ChannelError as exc:  # one unusable channel must not silence the others
                channels.append(_Unusable(name, str(exc)))
        return channels

    # -- evaluation and delivery -------------------------------------------------------------

    def evaluate(
        self,
        execution_id: str,
        *,
        notifications: Notifications | None = None,
        expected_duration: float | None = None,
        env: Mapping[str, str] | None = None,
        workflow: Workflow | None = None,
    ) -> list[Alert]:
        """The alerts the rules raise for one finished execution (nothing is sent); values of
        secret-looking variables of ``env`` (default: the manager's) are masked. A
        ``workflow`` with its own ``alerts`` is checked against those."""
        return evaluate_rules(
            self.store,
            execution_id,
            self.config.rules,
            notifications=notifications,
            expected_duration=expected_duration,
            env=self.env if env is None else env,
            workflow=workflow,
        )

    def dispatch(
        self,
        alerts: Iterable[Alert],
        *,
        channels: list[Channel] | None = None,
        env: Mapping[str, str] | None = None,
    ) -> list[dict[str, Any]]:
        """Send each alert not sent before and record it; returns the records written.

        ``channels`` defaults to the manager's channels, else ``config.channels``.
        """
        if channels is None:
            channels = self._channels(None)
        records = []
        for alert in alerts:
            key = alert.key()
            if key in self._sent:
                continue
            with _lock(self.path):
                # Another process may have sent it since we last looked.
                self._sent |= _recorded_keys(self.path)
                if key in self._sent:
                    continue
                record = self._deliver(alert, channels, self.env if env is None else env)
                _append(self.path, record)
                self._sent.add(key)
            records.append(record)
        return records

    def _deliver(
        self, alert: Alert, channels: list[Channel], env: Mapping[str, str] | None
    ) -> dict[str, Any]:
        from .channels import deliver

        results = deliver(alert, channels, attempts=self.attempts, delay=self.retry_delay)
        secrets = secret_values(env)
        outcome = [
            {
                "channel": r.channel,
                "ok": r.ok,
                "attempts": r.attempts,
                "error": None if r.error is None else redact(str(r.error), secrets),
            }
            for r in results
        ]
        return {
            "key": alert.key(),
            "rule": alert.rule,
            "workflow": alert.workflow,
            "execution_id": alert.execution_id,
            "severity": alert.severity,
            "title": alert.title,
            "ok": all(r["ok"] for r in outcome),
            "channels": outcome,
            "at": time.time(),
        }

    def _record_internal(self, execution_id: str, exc: Exception) -> None:
        record: dict[str, Any] = {
            "key": None,
            "rule": "internal",
            "workflow": None,
            "execution_id": execution_id,
            "ok": False,
            "error": redact(f"{type(exc).__name__}: {exc}", secret_values(self.env)),
            "channels": [],
            "at": time.time(),
        }
        try:
            with _lock(self.path):
                _append(self.path, record)
        except Exception as again:
            log.warning("cannot record an alerting error in %s: %s", self.path, again)


def _warm_up() -> None:
    """Import DuckDB on a side thread while the run goes on: the rules need it when the run
    ends, and a run that takes longer than the import (~60 ms) then pays nothing for it."""
    if "duckdb" not in sys.modules:
        threading.Thread(target=_import_duckdb, name="duckdb-warm-up", daemon=True).start()


def _import_duckdb() -> None:
    try:
        import duckdb  # noqa: F401
    except Exception:  # the rules will report it where it matters
        pass


def attach_alerts(
    orchestrator: Any,
    *,
    defer: bool = False,
    warn: Any = None,
    env: Mapping[str, str] | None = None,
) -> AlertManager | None:
    """Subscribe an AlertManager configured by the project's ``workflows/config.json`` to the
    runs of ``orchestrator``; None when alerts are off or runs are not recorded.

    An unreadable ``alerts`` section does not stop the run: ``warn`` (a callable taking a
    message) is told alerts are off and why. ``env``: the environment the runs see (the
    process's plus ``--env`` values), so secret-looking values given on the command line are
    masked in alerts too.
    """
    from ..errors import ConfigError
    from .rules import load_alert_config

    if not orchestrator.record:
        return None
    try:
        config = load_alert_config(orchestrator.project_root)
    except ConfigError as exc:
        if warn is not None:
            warn(f"alerts are off for this run: {exc}")
        return None
    if not config.enabled:
        return None
    manager = AlertManager(
        orchestrator.store,
        config=config,
        defer=defer,
        env=env,
        project_root=orchestrator.project_root,
    )
    orchestrator.sinks.append(manager)
    return manager


def prune_alerts(store_path: str | Path, older_than: float, *, dry_run: bool = False) -> int:
    """Drop alert records from before ``older_than`` (epoch seconds); returns how many.

    Their executions are gone with the same clean-up, so no dedupe key is needed any more.
    The file is rewritten whole under the alerts lock and swapped in atomically.
    """
    path = Path(store_path) / ALERTS_FILE
    if not path.exists():
        return 0
    with _lock(path):
        records = _read(path)
        kept = [r for r in records if (r.get("at") or 0) >= older_than]
        removed = len(records) - len(kept)
        if removed and not dry_run:
            temp = path.with_name(f".{path.name}.tmp")
            temp.write_text("".join(json.dumps(r, default=str) + "\n" for r in kept), "utf-8")
            os.replace(temp, path)
    return removed


def recent_alerts(store_path: str | Path, limit: int | None = 50) -> list[dict[str, Any]]:
    """The last ``limit`` records (all when None) of ``<store_path>/alerts.jsonl``, newest
    first."""
    records = _read(Path(store_path) / ALERTS_FILE)[::-1]
    return records if limit is None else records[: max(limit, 0)]


def _read(path: Path) -> list[dict[str, Any]]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    records = []
    for line in text.splitlines():
        try:
            record = json.loads(line)
        except ValueError:  # a line cut off by a crash: skip it
            continue
        if isinstance(record, dict):
            records.append(record)
    return records


def _recorded_keys(path: Path) -> set[str]:
    return {r["key"] for r in _read(path) if isinstance(r.get("key"), str)}


def _lock(path: Path) -> IndexLock:
    path.parent.mkdir(parents=True, exist_ok=True)
    return IndexLock(path.with_name(LOCK_FILE))


def _append(path: Path, record: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = (json.dumps(record, default=str) + "\n").encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


class _Unusable:
    """A channel that cannot be built (not configured): every send fails with the reason, so
    the delivery record says why while the other channels still send."""

    def __init__(self, name: str, reason: str):
        self.name = name
        self.reason = reason

    def send(self, alert: Alert) -> None:
        from .alert import ChannelError

        raise ChannelError(self.reason)
