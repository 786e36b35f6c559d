"""``AlertManager``: an event sink that turns finished runs into alerts, each sent once.

On ``RunEnded`` the manager evaluates the rules (``rules.py``) for the run it watched: the run
as its events told it, its workflow's past from the recent-runs file the runner keeps
(``store/recent.py``; the index only when that file cannot answer), so a runner never opens
DuckDB for its alerts. Episodes (``episodes.py``) decide which alerts go: one when a
condition starts, reminders if configured, one when it ends. Those are written to the outbox
(``outbox.py``) and tried once, all within ``DeliveryConfig.deadline`` (0.8 s): a channel that
does not answer by then never holds the process; what is left is delivered, with backoff, by
the next process that delivers alerts on the store (``deliver_pending``; ``workflow serve``
and the lab server do it every few seconds, ``start_courier``).

``background=True`` does all of that on a worker thread so the run's loop never waits for a
rule or a channel; ``defer=True`` holds it until ``close()`` (a command line prints its own
summary first, its alerts after). Nothing raised there reaches the run: errors of the
manager are recorded in ``alerts.jsonl`` (``rule: "internal"``, ``ok: false``).
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..execution.events import Event, RunEnded, RunStarted
from ..execution.records import Execution
from . import outbox
from .outbox import RECORDS as ALERTS_FILE
from .outbox import RECORDS_LOCK as LOCK_FILE
from .rules import AlertConfig, Evaluation, evaluate_rules, redact, secret_values

if TYPE_CHECKING:
    from ..definition.model import Notifications, Workflow
    from ..store import ExecutionStore
    from .alert import Alert, Channel
    from .history import History

log = logging.getLogger(__name__)

__all__ = ["ALERTS_FILE", "LOCK_FILE", "AlertManager", "attach_alerts", "recent_alerts"]
_STOP = object()


class AlertManager:
    """Evaluates alert rules for finished runs and sends each alert once.

    ``channels``: where alerts go, by name; by default those named by each workflow's
    ``notifications.channels``, else by ``config.channels``, made from the environment.
    Workflows whose definition the manager cannot load from the run's file (a run of a dict
    or model) can be registered with ``add_workflow`` so their ``notifications`` and
    ``expected_duration`` apply. Call ``close()`` before the process exits.
    """

    def __init__(
        self,
        store: ExecutionStore,
        *,
        config: AlertConfig,
        channels: list[Channel] | None = None,
        background: bool = True,
        defer: bool = False,
        env: Mapping[str, str] | None = None,
        project_root: Path | None = None,
        deadline: float | None = None,
    ):
        self.store = store
        # Where the channels' credentials may also come from (its secret sources), if known.
        self.project_root = project_root
        self.config = config
        self.channels = channels
        self.background = background
        self.defer = defer
        self.env = env
        self.deadline = config.delivery.deadline if deadline is None else deadline
        self.workflows: dict[str, Workflow] = {}
        self.path = Path(store.path) / ALERTS_FILE
        self._known: dict[str, Channel] = {c.name: c for c in channels or []}
        self._deferred: list[tuple[str, RunStarted | None, Execution | None]] = []
        self._started: dict[str, RunStarted] = {}
        self._runs: dict[str, Execution] = {}
        self._queue: queue.Queue[Any] = queue.Queue()
        self._worker: threading.Thread | None = None
        self._courier: threading.Thread | None = None
        self._stop = threading.Event()
        self._guard = threading.Lock()

    def add_workflow(self, workflow: Workflow) -> None:
        """Use this definition's notifications and expected_duration for its runs."""
        self.workflows[workflow.name] = workflow

    # -- the event sink --------------------------------------------------------------------

    def __call__(self, event: Event) -> None:
        """Event sink: follows each run; on RunEnded, schedules its evaluation; never blocks."""
        if not self.config.enabled:
            return
        if isinstance(event, RunStarted):
            self._started[event.execution_id] = event
            self._runs[event.execution_id] = Execution(event.execution_id, event.workflow)
        execution = self._runs.get(event.execution_id)
        if execution is not None:
            execution.apply(event)  # the run as it went: no need to read it back from the index
        if isinstance(event, RunEnded):
            item = (
                event.execution_id,
                self._started.pop(event.execution_id, None),
                self._runs.pop(event.execution_id, None),
            )
            if self.defer:
                self._deferred.append(item)
            elif self.background:
                self._ensure_worker()
                self._queue.put(item)
            else:
                self._process(*item)

    def close(self, timeout: float = 10) -> None:
        """Evaluate deferred runs and try their alerts (within the delivery deadline); wait up
        to ``timeout`` seconds for the worker thread; stop the courier."""
        deferred, self._deferred = self._deferred, []
        sent: list[Path] = []
        for item in deferred:
            sent += self._evaluate_and_queue(*item)
        if deferred:
            self.deliver_pending(first=sent)
        self._stop.set()
        with self._guard:
            worker, self._worker = self._worker, None
            courier, self._courier = self._courier, None
        if worker is not None:
            self._queue.put(_STOP)
            worker.join(timeout)
        if courier is not None:
            courier.join(timeout)

    def start_courier(self, interval: float = 5.0, deadline: float = 30.0) -> None:
        """Deliver what is due in the outbox every ``interval`` seconds until ``close()`` (a
        long-lived process: ``workflow serve``, the lab server)."""

        def loop() -> None:
            while not self._stop.wait(interval):
                try:
                    self.deliver_pending(deadline=deadline)
                except Exception as exc:  # keep delivering: the next round may do better
                    log.warning("alert delivery round failed: %s", exc)

        with self._guard:
            if self._courier is None:
                self._courier = threading.Thread(
                    target=loop, name="jupyter-workflows-alert-courier", daemon=True
                )
                self._courier.start()

    def deliver_pending(
        self,
        *,
        first: Iterable[Path] = (),
        deadline: float | None = None,
        force: bool = False,
        others: bool = True,
    ) -> None:
        """Try the outbox's pending deliveries (``first`` first, then every due one) for up to
        ``deadline`` seconds (default: the manager's); ``force`` ignores the backoff."""
        outbox.deliver(
            self.store.path,
            self._resolve,
            policy=self.config.delivery,
            deadline=self.deadline if deadline is None else deadline,
            first=first,
            others=others,
            force=force,
            secrets=secret_values(self.env),
        )

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

    def _process(
        self, execution_id: str, started: RunStarted | None, execution: Execution | None
    ) -> None:
        """Evaluate one run, queue its alerts and try them within the deadline."""
        queued = self._evaluate_and_queue(execution_id, started, execution)
        if queued:
            self.deliver_pending(first=queued)

    def _evaluate_and_queue(
        self, execution_id: str, started: RunStarted | None, execution: Execution | None
    ) -> list[Path]:
        """The outbox items written for one finished run; any error is recorded, never raised."""
        try:
            workflow = self._workflow(started)
            notifications = workflow.notifications if workflow is not None else None
            env = self._secret_sources(workflow)
            evaluation = self._evaluation(execution_id, execution, workflow, env)
            name = execution.workflow if execution is not None else evaluation_workflow(evaluation)
            queued: list[Path] = []
            if name is None:
                return queued

            def enqueue(alerts: list[Alert]) -> None:
                names = self._channel_names(notifications)
                # A workflow's own alert rule names its channels.
                entries = [(a, list(a.channels) if a.channels else names) for a in alerts]
                queued.extend(outbox.enqueue(self.store.path, entries))

            from .episodes import advance

            advance(self.store.path, name, evaluation, remind_every=self.config.remind_every,
                    now=time.time(), then=enqueue)  # fmt: skip
            return queued
        except Exception as exc:  # the run must never see an alerting failure
            log.warning("alerts for execution %s failed: %s", execution_id, exc)
            self._record_internal(execution_id, exc)
            return []

    def _evaluation(
        self,
        execution_id: str,
        execution: Execution | None,
        workflow: Workflow | None,
        env: Mapping[str, str],
    ) -> Evaluation:
        from .rules import LOG_LINES, evaluate_execution

        options: dict[str, Any] = {
            "notifications": workflow.notifications if workflow is not None else None,
            "expected_duration": workflow.expected_duration if workflow is not None else None,
            "env": env,
            "workflow": workflow,
        }
        if execution is not None and execution.status.is_terminal:
            history = self._history(execution)
            if history is not None:
                return evaluate_execution(history, execution, self.config.rules, **options)
        with self.store.snapshot() as view:  # a run not watched from its start, or no file
            loaded = view.get_execution(execution_id, logs=LOG_LINES)
            return evaluate_execution(view, loaded, self.config.rules, **options)

    def _history(self, execution: Execution) -> History | None:
        """The workflow's recent-runs file, seeded from the index once if it is not complete;
        None when it does not have this run (the index then answers)."""
        from ..store.recent import KEEP, RecentRun, read_recent, seed

        rules = self.config.rules
        window = max(rules.success_window, rules.slow_window)
        if window > KEEP:
            return None
        recent = read_recent(self.store.path, execution.workflow)
        if recent is not None and recent.covers(execution.id, window):
            return recent
        with self.store.snapshot() as view:
            rows = view.recent_finished(execution.workflow, KEEP)
        recent = seed(self.store.path, execution.workflow, [RecentRun(*row) for row in rows])
        return recent if recent.covers(execution.id, window) else None

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

    # -- channels ----------------------------------------------------------------------------

    def _channel_names(self, notifications: Notifications | None) -> list[str]:
        if self.channels is not None:
            return [c.name for c in self.channels]
        names = notifications.channels if notifications is not None else self.config.channels
        return list(dict.fromkeys(names))

    def _channels(self, notifications: Notifications | None) -> list[Channel]:
        """The channels alerts of a workflow with these notifications go to, made now (one
        that cannot be made fails every send with the reason)."""
        from .alert import ChannelError

        channels: list[Channel] = []
        for name in self._channel_names(notifications):
            try:
                channels.append(self._resolve(name))
            except ChannelError as exc:  # one unusable channel must not silence the others
                channels.append(_Unusable(name, str(exc)))
        return channels

    def _resolve(self, name: str) -> Channel:
        """The channel called ``name``: one given to the manager, else made from the
        environment (ChannelError when it cannot be)."""
        known = self._known.get(name)
        if known is not None:
            return known
        from .channels import CREDENTIALS, make_channel

        env: Mapping[str, str] | None = None
        if self.project_root is not None:  # credentials may also come from the secret sources
            from ..secrets.credentials import credentials

            wanted = CREDENTIALS.get(name.strip().lower(), ())
            env = credentials(self.project_root, wanted, warn=log.warning)
        return make_channel(name, env)

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
        """The alerts the rules raise for one finished execution read from the store (nothing
        is sent, no episode applied); values of secret-looking variables of ``env`` (default:
        the manager's) are masked. A ``workflow`` with its own ``alerts`` is checked against
        those."""
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
        """Queue each alert not queued or sent before, try it within the deadline, and return
        its record as it stands then (``status`` "sent", "failed" or "pending").

        ``channels`` defaults to the manager's channels, else ``config.channels``. No episode
        applies: these alerts go as given.
        """
        if channels is None:
            channels = self._channels(None)
        for channel in channels:
            self._known.setdefault(channel.name, channel)
        names = [c.name for c in channels]
        alerts = list(alerts)
        queued = outbox.enqueue(self.store.path, [(a, names) for a in alerts])
        if not queued:
            return []
        self.deliver_pending(first=queued, others=False)
        keys = {outbox.item_path(self.store.path, a.key()): a.key() for a in alerts}
        wanted = {keys[p] for p in queued}
        found = {
            r["key"]: r for r in recent_alerts(self.store.path, None) if r.get("key") in wanted
        }
        return [found[keys[p]] for p in queued if keys[p] in found]

    def _record_internal(self, execution_id: str, exc: Exception) -> None:
        record: dict[str, Any] = {
            "key": None,
            "rule": "internal",
            "workflow": None,
            "execution_id": execution_id,
            "status": "failed",
            "ok": False,
            "error": redact(f"{type(exc).__name__}: {exc}", secret_values(self.env)),
            "channels": [],
            "at": time.time(),
        }
        try:
            with outbox.records_lock(self.store.path):
                outbox.append_record(self.store.path, record)
        except Exception as again:
            log.warning("cannot record an alerting error in %s: %s", self.path, again)


def evaluation_workflow(evaluation: Evaluation) -> str | None:
    """The workflow an evaluation is about (its alerts say), for a run not watched."""
    for alert in [*evaluation.alerts, *evaluation.resolved.values()]:
        return alert.workflow
    return None


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
    The file is rewritten whole under the alerts lock and swapped in atomically. Alerts still
    in the outbox stay there.
    """
    import json

    path = Path(store_path) / ALERTS_FILE
    if not path.exists():
        return 0
    with outbox.records_lock(store_path):
        records = outbox.read_records(store_path)
        kept = [r for r in records if (r.get("at") or 0) >= older_than]
        removed = len(records) - len(kept)
        if removed and not dry_run:
            temp = path.with_name(f".{path.name}.tmp")
            temp.write_text("".join(json.dumps(r, default=str) + "\n" for r in kept), "utf-8")
            os.replace(temp, path)
    return removed


def recent_alerts(store_path: str | Path, limit: int | None = 50) -> list[dict[str, Any]]:
    """The last ``limit`` alerts (all when None), newest first: those still in the outbox
    (``status: "pending"``) and those settled in ``alerts.jsonl`` ("sent", "failed")."""
    records = outbox.read_records(store_path)
    settled = {r["key"] for r in records if isinstance(r.get("key"), str)}
    pending = [r for r in outbox.pending_records(store_path) if r["key"] not in settled]
    ordered = sorted([*records, *pending], key=lambda r: float(r.get("at") or 0), reverse=True)
    return ordered if limit is None else ordered[: max(limit, 0)]


class _Unusable:
    """A channel that cannot be built (not configured): every send fails with the reason, so
    the delivery record says why while the other channels still send."""

    def __init__(self, name: str, reason: str):
        self.name = name
        self.reason = reason

    def send(self, alert: Alert) -> None:
        from .alert import ChannelError

        raise ChannelError(self.reason)
