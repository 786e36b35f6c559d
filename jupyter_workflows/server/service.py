"""``WorkflowService``: what the REST handlers do, over the same engine and store as the CLI.

One per server. Runs go through one ``RunQueue`` on the server's event loop (trigger "api"),
so they run in the server process without blocking it; each gets a ``RunBroadcaster`` that
folds its events and feeds the event streams. Reads of the store (DuckDB, which blocks) and
of workflow files run in a small thread pool of their own. Errors a client can act on are
raised as ``ApiError`` (status and message) or as the package's own errors, which the
handlers map to statuses.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from ..engine.orchestrator import WorkflowOrchestrator
from ..errors import ExecutionNotFound
from ..execution.records import Execution
from ..execution.states import State
from .discovery import PathRefused, resolve_workflow_path
from .executions import ExecutionQuery, execution_json, log_lines
from .live import RunBroadcaster, Subscriber

if TYPE_CHECKING:
    from ..store import ExecutionStore

T = TypeVar("T")
log = logging.getLogger(__name__)

LAB = "lab"  # who asked, as runs cancelled from the panel record it (``cancelled_by``)
CANCEL_WAIT = 3.0  # seconds a cancel waits for the run to be recorded cancelled


class ApiError(Exception):
    """An answer other than success: HTTP ``status``, a ``message``, and extra JSON fields."""

    def __init__(self, status: int, message: str, **extra: Any):
        super().__init__(message)
        self.status = status
        self.message = message
        self.extra = extra


def empty_health_report() -> dict[str, Any]:
    """The health report of a project with no history (no store is created to compute it)."""
    overall = dict.fromkeys(("success_rate", "avg_ms", "p50_ms", "p95_ms"))
    return {
        "overall": {"runs": 0, "succeeded": 0, "failed": 0, **overall},
        "workflows": [],
        "tasks": [],
        "alerts": [],
    }


def _cancel_outcome(execution: Execution) -> dict[str, Any]:
    """What a cancel answers: the run's status once the wait is over, and who stopped it."""
    return {
        "execution_id": execution.id,
        "cancelled": execution.status is State.CANCELLED,
        "status": str(execution.status),
        "cancelled_by": execution.cancelled_by,
    }


class WorkflowService:
    """Workflows, runs and history of the project the server's root ``root_dir`` is in.

    The project root is found from ``root_dir`` as the command line finds it from its working
    directory (``jupyter_workflows.project.project_root``); paths to and from clients stay
    relative to ``root_dir``, the folder the contents API serves. ``concurrency`` and
    ``max_waiting`` bound the runs (see ``RunQueue``); ``allow_hidden`` mirrors the contents
    manager's setting for paths clients give.
    """

    def __init__(
        self,
        root_dir: str | Path,
        *,
        concurrency: int = 4,
        max_waiting: int = 100,
        allow_hidden: bool = False,
    ):
        from ..project import project_root

        self.root = Path(root_dir).expanduser().resolve()
        self.project_root = project_root(start=self.root)
        self.orchestrator = WorkflowOrchestrator(self.project_root)
        self.concurrency = concurrency
        self.max_waiting = max_waiting
        self.allow_hidden = allow_hidden
        self._queue: Any = None  # a RunQueue, made on the loop at the first run
        self._live: dict[str, RunBroadcaster] = {}
        # Reads may wait on the index lock (another process refreshing): enough threads that
        # a couple of waiting reads do not hold up validation and listing.
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="jupyter-workflows")
        # Runs started from the panel raise alerts like any other; rules and channels work on
        # the manager's own thread, never on the server's loop.
        from ..monitor.alerting import attach_alerts

        self.alerts = attach_alerts(self.orchestrator, warn=log.warning)
        if self.alerts is not None:
            self.alerts.start_courier()  # what runs on the store left in the alert outbox

    @property
    def store(self) -> ExecutionStore:
        """The project's ExecutionStore (ConfigError when workflows/config.json is unusable)."""
        return self.orchestrator.store

    async def _blocking(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run ``fn`` in the service's threads so the server's loop never waits on it."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, partial(fn, *args, **kwargs))

    def resolve(self, path: Any) -> Path:
        """The workflow file a client's ``path`` names (ApiError 400/404 otherwise)."""
        try:
            return resolve_workflow_path(self.root, path, allow_hidden=self.allow_hidden)
        except PathRefused as exc:
            raise ApiError(exc.status, str(exc)) from None

    # -- workflows ---------------------------------------------------------------------------

    async def workflows(self) -> dict[str, Any]:
        from .catalog import list_workflows

        def listing() -> list[dict[str, Any]]:
            store = self.store if self.store.exists() else None
            return list_workflows(self.root, store, self.project_root)

        return {"workflows": await self._blocking(listing)}

    async def validate(self, path: Any) -> dict[str, Any]:
        from ..definition.loader import validate_file
        from .catalog import validation_json

        file = self.resolve(path)
        report = await self._blocking(validate_file, file)
        return validation_json(report, self.root, str(path))

    # -- runs --------------------------------------------------------------------------------

    async def submit(
        self, path: Any, env: Mapping[str, str] | None = None, **options: Any
    ) -> dict[str, Any]:
        """Queue a run of the workflow at ``path``; its id comes back at once.

        ``options`` go to ``WorkflowOrchestrator.prepare`` (``resume=``, ``from_task=``...).
        Raises ApiError 400 (with ``problems``) for an invalid workflow, 409 for a resume that
        cannot be done, 503 when the queue is full. Must be called on the server's loop; the
        file is read and checked off it.
        """
        from ..engine.queue import QueueFull, RunQueue
        from ..errors import DefinitionError, ResumeRefused, ValidationError
        from .catalog import problems_json

        file = self.resolve(path)
        if self._queue is None:
            self._queue = RunQueue(
                self.orchestrator, concurrency=self.concurrency, max_waiting=self.max_waiting
            )
        execution_id = str(uuid.uuid4())
        live = RunBroadcaster(execution_id, workflow=file.stem, root=self.root)
        try:
            workflow, _ = await self._blocking(self.orchestrator.load, file)
            # A store that cannot record the run is the client's answer now, not a 202 for a
            # run that crashes before its first task.
            await self._blocking(self.store.check_writable)
            if options:  # a resume refused is the client's answer now, not a crashed run
                await self._blocking(
                    self.orchestrator.plan_reuse, workflow, env, options.get("resume"),
                    options.get("from_task"), options.get("only"),
                    bool(options.get("no_cache")), list(options.get("refresh") or ()),
                    params=options.get("params"),
                )  # fmt: skip
            queued = self._queue.submit(
                workflow, env=env, trigger="api", execution_id=execution_id, sinks=[live],
                file=file, **options,
            )  # fmt: skip
        except ValidationError as exc:
            problems = problems_json(exc.problems, self.root, str(path))
            errors = sum(1 for p in exc.problems if p.is_error)
            raise ApiError(400, f"'{path}' has {errors} problem(s)", problems=problems) from None
        except DefinitionError as exc:
            raise ApiError(400, str(exc)) from None
        except ResumeRefused as exc:
            raise ApiError(409, str(exc)) from None
        except QueueFull as exc:
            raise ApiError(503, f"too many runs: {exc}") from None
        live.execution.workflow = queued.workflow.name
        self._live[execution_id] = live
        queued.done.add_done_callback(partial(self._finished, execution_id))
        return {"execution_id": execution_id, "workflow": queued.workflow.name}

    async def resume(
        self,
        execution_id: str,
        *,
        from_task: str | None = None,
        only: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """Queue a run resuming ``execution_id`` (id or prefix) from the workflow file it was
        run from, as that file is now: the panel's Resume button.

        ApiError 404 for an unknown id, 409 for a run that cannot be resumed (another
        workflow's file, still running, recorded without a file under this server's root).
        """
        if not self.store.exists():
            raise ExecutionNotFound(execution_id)
        old = await self._blocking(self.store.get_execution, execution_id)
        if not old.file:
            raise ApiError(
                409, f"execution {old.id} recorded no workflow file to resume it from "
                "(it was run from Python or a notebook cell)",
            )  # fmt: skip
        try:
            path = Path(old.file).resolve().relative_to(self.root).as_posix()
        except ValueError:
            raise ApiError(
                409, f"execution {old.id} was run from {old.file}, outside this server's root"
            ) from None
        options = {"resume": old.id, "from_task": from_task, "only": only}
        submitted = await self.submit(path, env, **options)
        return {**submitted, "resumed_from": old.id}

    def _finished(self, execution_id: str, done: asyncio.Future[Execution]) -> None:
        live = self._live.pop(execution_id, None)
        error: str | None
        if done.cancelled():  # only a run cancelled while waiting ends without its run_ended
            status, error = "cancelled", "cancelled before it started"
        elif done.exception() is not None:
            log.error("run %s failed in the server: %s", execution_id, done.exception())
            status, error = "crashed", str(done.exception())
        else:
            status, error = str(done.result().status), done.result().error
        if live is not None:
            live.finish(status, error)

    async def cancel(self, execution_id: str) -> dict[str, Any]:
        """Cancel a running execution, whichever process runs it (this server, a ``workflow
        run``, cron, a kernel): recorded ``cancelled`` with ``cancelled_by`` "lab".

        A run of this server is stopped here; any other gets a request through the store,
        which its owner sees within a second. Waits up to ``CANCEL_WAIT`` seconds for the
        record: ``{"execution_id", "cancelled", "status", "cancelled_by"}``, ``cancelled``
        False when it still runs then (it is stopping). ApiError 404 for an unknown id, 409
        for a run that has ended, or whose runner had died (it is recorded as crashed then).
        """
        from ..errors import ExecutionNotRunning

        queued = self._queue.get(execution_id) if self._queue is not None else None
        if queued is not None and self._queue.cancel(execution_id, by=LAB):
            done = queued.done
            await asyncio.wait({done}, timeout=CANCEL_WAIT)  # never raises: the state says
            if not done.done():  # still stopping when the wait ran out
                status = "running"
            elif done.cancelled():  # it was waiting for a slot: recorded cancelled, unstarted
                status = "cancelled"
            elif done.exception() is not None:  # a fault of the server's (logged by _finished)
                status = "crashed"
            else:
                return _cancel_outcome(done.result())
            return {"execution_id": execution_id, "cancelled": status == "cancelled",
                    "status": status, "cancelled_by": None}  # fmt: skip
        if not self.store.exists():
            raise ExecutionNotFound(execution_id)
        try:
            execution = await self._blocking(
                self.store.cancel, execution_id, by=LAB, wait=CANCEL_WAIT
            )
        except ExecutionNotRunning as exc:
            raise ApiError(409, str(exc), execution_status=exc.status) from None
        return _cancel_outcome(execution)

    def active(self) -> bool:
        """Whether runs are running or waiting (the server is not idle)."""
        return bool(self._live)

    # -- history -----------------------------------------------------------------------------

    async def executions(self, query: ExecutionQuery) -> dict[str, Any]:
        from .executions import page

        if not self.store.exists():
            return {"executions": [], "total": 0, "limit": query.limit, "offset": query.offset}
        return await self._blocking(page, self.store, query)

    async def execution(self, execution_id: str, logs: int = 20) -> dict[str, Any]:
        """One execution with tasks, attempts and log tails; a run of this server that has not
        reached the store yet (still waiting for a slot) comes from its live record."""
        try:
            if not self.store.exists():
                raise ExecutionNotFound(execution_id)
            execution = await self._blocking(self.store.get_execution, execution_id, logs=logs)
        except ExecutionNotFound:
            live = self._live.get(execution_id)
            if live is None:
                raise
            execution = live.execution
        return execution_json(execution, self.root)

    async def open_notebook(self, execution_id: str, task_id: str) -> dict[str, Any]:
        """A path the contents API serves for a task's executed notebook (copied out of the
        hidden store on first request). 404 unknown execution or task, 409 none kept."""
        from .notebooks import NotebookUnavailable, openable_copy

        if not self.store.exists():
            raise ExecutionNotFound(execution_id)
        execution = await self._blocking(self.store.get_execution, execution_id)
        try:
            path, copied = await self._blocking(openable_copy, execution, task_id, self.root)
        except NotebookUnavailable as exc:
            raise ApiError(exc.status, str(exc)) from None
        return {"execution_id": execution.id, "task_id": task_id, "path": path.as_posix(),
                "copied": copied}  # fmt: skip

    async def task_log(self, execution_id: str, task_id: str, tail: int) -> dict[str, Any]:
        """The last ``tail`` output lines of one task (404 for an unknown task)."""
        if not self.store.exists():
            raise ExecutionNotFound(execution_id)
        lines = await self._blocking(self.store.logs, execution_id, task_id, tail)
        if not lines:
            execution = await self._blocking(self.store.get_execution, execution_id)
            if task_id not in execution.tasks:
                raise ApiError(404, f"execution '{execution.id}' has no task '{task_id}'")
        return {"task_id": task_id, "lines": log_lines(lines)}

    async def health(self, workflow: str | None, since: Any) -> dict[str, Any]:
        """``workflow monitor --json``'s report (datetimes are left for the JSON encoder)."""
        if not self.store.exists():
            return empty_health_report()
        from ..monitor.health import WorkflowMonitor

        monitor = WorkflowMonitor(self.store)
        return await self._blocking(monitor.health_report, workflow, since)

    # -- live events -------------------------------------------------------------------------

    async def open_stream(self, execution_id: str) -> tuple[dict[str, Any], Subscriber | None]:
        """The execution now (``execution_json``), and a subscriber to what changes after it
        when it runs in this server."""
        live = self._live.get(execution_id)
        if live is not None:
            return live.subscribe()
        return await self.execution(execution_id), None

    def close_stream(self, execution_id: str, subscriber: Subscriber) -> None:
        live = self._live.get(execution_id)
        if live is not None:
            live.unsubscribe(subscriber)

    # -- lifetime ----------------------------------------------------------------------------

    async def shutdown(self) -> None:
        """Cancel the runs (each is recorded as cancelled) and stop the threads."""
        if self._queue is not None:
            await self._queue.shutdown(cancel=True)
        if self.alerts is not None:
            alerts = self.alerts
            await asyncio.get_running_loop().run_in_executor(None, lambda: alerts.close(5))
        self._pool.shutdown(wait=False)
