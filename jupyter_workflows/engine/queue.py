"""``RunQueue``: start workflow runs in this event loop, a bounded number at a time.

``submit`` loads and checks the workflow at once (a broken definition is refused there, with its
problems), gives the run its execution id, and returns; the run starts when a slot is free. When
the wait list is full, ``submit`` raises ``QueueFull`` rather than letting work pile up without
bound. ``shutdown`` cancels what runs (each run records itself as cancelled) and records what
was still waiting as cancelled too, so no id handed out is left without a record.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import WorkflowError
from ..execution.records import Execution
from ..execution.states import State

if TYPE_CHECKING:
    from ..definition.model import Workflow
    from .orchestrator import WorkflowOrchestrator
    from .run import WorkflowRun

log = logging.getLogger(__name__)


class QueueFull(WorkflowError):
    """Too many runs are waiting; the caller should refuse the trigger (HTTP 503)."""


@dataclass
class QueuedRun:
    """A submitted run: its id is known at once; ``done`` resolves to its Execution."""

    execution_id: str
    workflow: Workflow
    file: str | None
    trigger: str
    env: dict[str, str]
    sinks: list[Any]
    done: asyncio.Future[Execution]
    # More of ``WorkflowOrchestrator.prepare``'s options: resume, from_task, only, no_cache...
    options: dict[str, Any] = field(default_factory=dict)
    started: bool = False  # it has its slot
    journaled: bool = False  # it has a journal: it records itself from here on
    run: WorkflowRun | None = None  # once prepared


class RunQueue:
    """Runs submitted workflows with at most ``concurrency`` at once and ``max_waiting`` queued.

    ``orchestrator`` is a ``WorkflowOrchestrator``; its store records every run. Must be used
    from one event loop (the daemon's).
    """

    def __init__(
        self, orchestrator: WorkflowOrchestrator, *, concurrency: int = 4, max_waiting: int = 100
    ):
        if concurrency < 1 or max_waiting < 0:
            raise ValueError("concurrency must be >= 1 and max_waiting >= 0")
        self.orchestrator = orchestrator
        self.concurrency = concurrency
        self.max_waiting = max_waiting
        self._slots = asyncio.Semaphore(concurrency)
        self._waiting: list[QueuedRun] = []
        self._running: dict[str, QueuedRun] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._by_id: dict[str, asyncio.Task[None]] = {}
        self._closed = False

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    @property
    def running(self) -> int:
        return len(self._running)

    def submit(
        self,
        workflow: str | Path | Workflow,
        *,
        env: Mapping[str, str] | None = None,
        trigger: str = "manual",
        execution_id: str | None = None,
        sinks: Iterable[Any] = (),
        file: str | Path | None = None,
        **options: Any,
    ) -> QueuedRun:
        """Queue a run and return at once; ``sinks`` get its events (live views), ``file``
        names where a pre-loaded Workflow came from; ``options`` go to
        ``WorkflowOrchestrator.prepare`` (``resume=``, ``from_task=``...).

        Raises DefinitionError/ValidationError for a broken workflow, QueueFull when the wait
        list is full, RuntimeError after shutdown.
        """
        if self._closed:
            raise RuntimeError("the run queue is shut down")
        if len(self._waiting) + len(self._running) >= self.concurrency + self.max_waiting:
            raise QueueFull(
                f"{len(self._running)} run(s) running and {len(self._waiting)} waiting "
                f"(limits: {self.concurrency} running, {self.max_waiting} waiting)"
            )
        model, loaded_from = self.orchestrator.load(workflow)
        queued = QueuedRun(
            execution_id=execution_id or str(uuid.uuid4()),
            workflow=model,
            file=str(file) if file is not None else loaded_from,
            trigger=trigger,
            env=dict(env or {}),
            sinks=list(sinks),
            done=asyncio.get_running_loop().create_future(),
            options=options,
        )
        self._waiting.append(queued)
        task = asyncio.get_running_loop().create_task(self._run(queued))
        self._tasks.add(task)
        self._by_id[queued.execution_id] = task
        task.add_done_callback(self._tasks.discard)
        task.add_done_callback(lambda _: self._by_id.pop(queued.execution_id, None))
        task.add_done_callback(lambda done: self._settle(queued, done))
        return queued

    def get(self, execution_id: str) -> QueuedRun | None:
        """The waiting or running run of this queue with this id, if there is one."""
        for queued in (*self._waiting, *self._running.values()):
            if queued.execution_id == execution_id:
                return queued
        return None

    def cancel(self, execution_id: str, by: str | None = None) -> bool:
        """Cancel a waiting or running run of this queue; False when it is not (or no longer)
        here. A running run records itself as cancelled (with ``by`` as ``cancelled_by``),
        a waiting one is recorded cancelled before it started."""
        task = self._by_id.get(execution_id)
        if task is None or task.done():
            return False
        queued = self.get(execution_id)
        if queued is not None and queued.run is not None and by is not None:
            # Through the run, so the record says who asked; it stops as a cancel does.
            queued.run.request_cancel(f"cancelled on request from {by}", by)
        else:
            task.cancel()
        return True

    async def _run(self, queued: QueuedRun) -> None:
        async with self._slots:
            self._waiting.remove(queued)
            queued.started = True
            self._running[queued.execution_id] = queued
            try:
                run = self.orchestrator.prepare(
                    queued.workflow,
                    env=queued.env,
                    execution_id=queued.execution_id,
                    trigger=queued.trigger,
                    sinks=queued.sinks,
                    file=queued.file,
                    **queued.options,
                )
                queued.journaled = True  # from here on the run records itself, whatever happens
                queued.run = run
                execution = await self.orchestrator.run_prepared(run)
            finally:
                self._running.pop(queued.execution_id, None)
        if not queued.done.done():
            queued.done.set_result(execution)

    def _settle(self, queued: QueuedRun, task: asyncio.Task[None]) -> None:
        """After the run's task ends, however: resolve ``done`` and make sure the id has a record.

        A done callback rather than an ``except`` in ``_run``: a task cancelled before its
        first step never runs its body, and its place in the wait list must still be freed.
        """
        if task.cancelled():
            if not queued.started:
                if queued in self._waiting:
                    self._waiting.remove(queued)
                reason = "shutting down" if self._closed else "cancelled"
                self._record(queued, State.CANCELLED, f"cancelled before it started ({reason})")
            if not queued.done.done():
                queued.done.cancel()
            return
        error = task.exception()
        if error is None:
            return
        # A fault of ours (say, the journal cannot be opened: disk full), not of the workflow:
        # the daemon stays up, and an id already handed out still gets a record if it can.
        log.warning("run %s could not run: %s", queued.execution_id, error)
        if not queued.journaled:
            self._record(queued, State.CRASHED, f"could not start: {error}")
        if not queued.done.done():
            queued.done.set_exception(error)

    def _record(self, queued: QueuedRun, status: State, reason: str) -> None:
        try:
            record_unstarted(
                self.orchestrator,
                queued.workflow,
                execution_id=queued.execution_id,
                status=status,
                reason=reason,
                trigger=queued.trigger,
                file=queued.file,
            )
        except Exception as exc:  # the store itself is failing: say so, keep going
            log.warning("cannot record run %s (%s): %s", queued.execution_id, reason, exc)

    async def join(self) -> None:
        """Wait until nothing runs or waits."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def shutdown(self, *, cancel: bool = True) -> None:
        """Refuse new runs; cancel (and record) the running and waiting ones, or let them end."""
        self._closed = True
        if cancel:
            for task in list(self._tasks):
                task.cancel()
        await self.join()


def record_unstarted(
    orchestrator: WorkflowOrchestrator,
    workflow: Workflow,
    *,
    execution_id: str | None = None,
    status: State,
    reason: str,
    trigger: str,
    file: str | None = None,
) -> Execution:
    """Record a run that never started (a skipped cron slot, a cancelled queued run).

    It appears in the history with ``status`` and ``reason`` as its error, no task having run,
    so a user asking "why did nothing happen at 06:00?" finds the answer there.
    """
    now = time.time()
    execution = Execution(
        id=execution_id or str(uuid.uuid4()),
        workflow=workflow.name,
        status=status,
        version=workflow.version,
        file=file,
        project_root=str(orchestrator.project_root),
        trigger=trigger,
        started_at=now,
        ended_at=now,
        error=reason,
    )
    if orchestrator.record:
        # Journal only, like a runner: the next read indexes it, so a daemon's loop never
        # waits on DuckDB (a shutdown with hundreds of queued runs stays quick).
        orchestrator.store.save_execution(execution, index=False)
    return execution
