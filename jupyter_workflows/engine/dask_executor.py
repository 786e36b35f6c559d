"""The ``dask`` executor: each attempt of a task runs on a worker of a Dask cluster.

The engine stays the one coordinator (DAG, retries, deadlines, templating, records); what goes
to a worker is one attempt of one task (``remote_attempt.run_on_worker``), with its task model,
environment and template scope (only the views of the tasks its templates read, so an
attempt's message does not grow with the run). While it runs, the worker sends its output
lines, progress and placement back as Dask events (``Worker.log_event`` on the executor's
topic, tagged with the attempt's Dask key, received through one ``Client.subscribe_topic``),
so they reach the journal, the console, the widget and the panel within milliseconds, not at
the end.

- Cancellation (a deadline, Ctrl-C, a cancelled run) cancels the Dask future; the attempt on
  the worker sees its task cancelled and stops its process tree there.
- A lost worker (killed, out of memory, scaled down) is infrastructure, not the task's failure:
  Dask starts the lost attempt again elsewhere, which the second "started" event reveals; the
  executor then stops that copy and reports the attempt ``crashed`` with the lost worker's
  address and ``infrastructure=True``, and the engine tries again under the task's
  ``infrastructure_retries``, not its ``retry``. The executor also watches that the attempt's
  worker is still in the cluster (every WATCH_EVERY): when the last worker is lost and none
  joins within WORKER_WAIT, the attempt ends ``crashed`` saying no worker is left, and so does
  the run.
- ``resources`` become Dask worker resources; a run asking for resources no worker has, or a
  project folder a worker cannot see, is refused before the first task.

``distributed`` is imported only here, so a local run never pays for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import uuid
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from ..errors import WorkflowError
from .executors import all_tasks
from .remote_attempt import RemoteAttempt, run_on_worker

if TYPE_CHECKING:
    from distributed import Client, Future

    from ..definition.model import TaskBase, Workflow
    from ..definition.templates import Scope
    from ..tasks.base import TaskContext, TaskResult, TaskType

Listener = Callable[[dict[str, Any]], None]


WATCH_EVERY = 1.0  # seconds between checks that an attempt's worker is still there
WORKER_WAIT = 10.0  # seconds a lost attempt waits for some worker before giving up


class ClusterError(WorkflowError):
    """The cluster cannot run this workflow (unreachable, no worker fits, files not shared)."""


CONNECT_SECONDS = 10  # a scheduler still starting gets this long; a wrong address no longer


class DaskExecutor:
    """Runs attempts on a Dask cluster.

    ``cluster`` is a scheduler address (``tcp://host:8786``), an existing
    ``distributed.Client`` (one a notebook made), or None for a ``LocalCluster`` of worker
    processes started for the run and closed with it.
    """

    name = "dask"

    def __init__(self, cluster: str | Client | None = None, *, workers: int | None = None):
        self.cluster = cluster
        self.workers = workers
        self.client: Client | None = None
        self._local_cluster: Any = None
        self.address: str | None = None
        self.dashboard: str | None = None
        # One event topic per executor, each message tagged with its attempt's Dask key:
        # subscribing per attempt would cost two more scheduler messages and leave the
        # scheduler one event log per attempt.
        self._topic = f"jupyter-workflows/{uuid.uuid4()}"
        self._listeners: dict[str, Listener] = {}
        self._seen: tuple[float, frozenset[str]] | None = None  # (when, worker addresses)
        self._reads: dict[int, tuple[TaskBase, frozenset[str] | None]] = {}

    # -- lifetime ------------------------------------------------------------------------

    async def start(self, workflow: Workflow, project_root: str) -> None:
        """Connect (or start a LocalCluster), then refuse what the cluster cannot run."""
        from distributed import Client, LocalCluster

        self._reads.clear()
        cluster = self.cluster
        if cluster is None:
            self._local_cluster = await LocalCluster(
                n_workers=self.workers or min(4, os.cpu_count() or 2),
                threads_per_worker=1,
                processes=True,
                host="127.0.0.1",
                dashboard_address=":0",
                asynchronous=True,
            )
            cluster = self._local_cluster.scheduler_address
        elif not isinstance(cluster, str):  # a Client made elsewhere (maybe synchronous)
            cluster = cluster.scheduler.address  # type: ignore[union-attr]
        client = Client(cluster, asynchronous=True, set_as_default=False, timeout=CONNECT_SECONDS)
        try:
            await asyncio.wait_for(client, timeout=CONNECT_SECONDS + 5)
        except (OSError, asyncio.TimeoutError) as exc:
            # Closed here, on the loop: a Client left to the garbage collector closes itself
            # synchronously, outside any loop, and waits 60 s for that before a traceback.
            with contextlib.suppress(Exception):
                await asyncio.wait_for(client.close(), timeout=5)
            reason = str(exc) or f"no answer within {CONNECT_SECONDS} s"
            message = f"cannot connect to the Dask scheduler at {cluster}: {reason}"
            raise ClusterError(message) from None
        self.client = client
        self.address = str(cluster)
        self.dashboard = client.dashboard_link
        client.subscribe_topic(self._topic, self._dispatcher())
        await self._check(workflow, project_root)

    def _dispatcher(self) -> Callable[[tuple[float, dict[str, Any]]], None]:
        """The topic's handler: each message to the listener of its attempt (by Dask key)."""
        loop = asyncio.get_running_loop()
        engine_thread = threading.get_ident()
        listeners = self._listeners

        def deliver(message: dict[str, Any]) -> None:
            listener = listeners.get(message.get("key", ""))
            if listener is not None:  # else the attempt ended: a late line is dropped
                listener(message)

        def handler(event: tuple[float, dict[str, Any]]) -> None:
            if threading.get_ident() == engine_thread:
                deliver(event[1])
            else:
                loop.call_soon_threadsafe(deliver, event[1])

        return handler

    async def close(self) -> None:
        if self.client is not None:
            self._listeners.clear()
            await self.client.close()
            self.client = None
        if self._local_cluster is not None:
            await self._local_cluster.close()
            self._local_cluster = None

    async def _check(self, workflow: Workflow, project_root: str) -> None:
        workers = await self._workers()
        if not workers:
            raise ClusterError(f"the Dask cluster at {self.address} has no workers")
        missing = _unplaceable(all_tasks(workflow.tasks), workers)
        if missing:
            raise ClusterError("; ".join(missing))
        assert self.client is not None
        seen = await self.client.run(os.path.isdir, project_root)
        blind = sorted(worker for worker, visible in seen.items() if not visible)
        if blind:
            raise ClusterError(
                f"the project folder {project_root} is not visible on worker(s) "
                f"{', '.join(blind)}: workers must see the project at the same path "
                "(a shared file system)"
            )

    async def _workers(self) -> dict[str, Any]:
        """The scheduler's workers now (the client's own copy of that lags behind)."""
        assert self.client is not None
        identity = await self.client.scheduler.identity(n_workers=-1)  # type: ignore[union-attr]
        workers: dict[str, Any] = identity["workers"]
        return workers

    # -- attempts ------------------------------------------------------------------------

    def reserve(self, task: TaskBase) -> contextlib.AbstractAsyncContextManager[Any]:
        return contextlib.nullcontext()  # the scheduler places by the workers' resources

    async def run_attempt(
        self, task_type: TaskType, task: TaskBase, ctx: TaskContext
    ) -> TaskResult:
        if not task_type.remote or self.client is None:
            return await task_type.run(task, ctx)
        from ..execution.states import State
        from ..tasks.base import TaskResult

        client = self.client
        key = f"workflow-attempt-{uuid.uuid4()}"
        placements: list[str] = []
        lost = asyncio.Event()

        def on_message(message: dict[str, Any]) -> None:
            what = message.get("what")
            if what == "lines":
                for stream, line in message["lines"]:
                    ctx.emit_line(stream, line)
            elif what == "progress":
                ctx.emit_progress(*message["progress"])
            elif what == "started":
                placements.append(message["worker"])
                if len(placements) == 1:
                    ctx.emit_placement("dask", message["worker"], message["host"])
                else:  # Dask started it again elsewhere: the first worker was lost
                    lost.set()

        self._listeners[key] = on_message
        scope = self._scope_for(task, ctx.scope)
        # The environment goes as what differs from the template scope's (the runner's
        # environment, which the scope carries anyway): half the message.
        attempt = RemoteAttempt(
            topic=self._topic,
            type_name=task.type,
            task=task,
            execution_id=ctx.execution_id,
            task_id=ctx.task_id,
            attempt=ctx.attempt,
            project_root=str(ctx.project_root),
            env={k: v for k, v in ctx.env.items() if scope.env.get(k) != v},
            unset=[name for name in scope.env if name not in ctx.env],
            scope=scope,
            artifacts_dir=str(ctx.artifacts_dir),
            kill_grace=ctx.kill_grace,
            timeout=ctx.timeout,
        )
        future: Future = client.submit(
            run_on_worker,
            attempt,
            key=key,
            pure=False,
            resources=dict(task.resources) or None,
        )
        watch = asyncio.ensure_future(self._watch(placements, lost))
        try:
            result = await self._outcome(future, lost)
            if result is not None:
                return result
            worker = placements[0] if placements else "?"
            await self._stop(future)
            if not await self._some_worker():
                error = f"worker {worker} was lost and no worker is left in {self.address}"
                return TaskResult(
                    status=State.CRASHED, exit_code=None, error=error, retryable=False
                )
            return TaskResult(
                status=State.CRASHED,
                exit_code=None,
                error=f"worker {worker} was lost while running this attempt",
                infrastructure=True,
            )
        except asyncio.CancelledError:
            await self._stop(future)
            raise
        finally:
            watch.cancel()
            self._listeners.pop(key, None)
            future.release()

    async def _watch(self, placements: list[str], lost: asyncio.Event) -> None:
        """Set ``lost`` when the worker running the attempt leaves the cluster. Dask starts the
        attempt again elsewhere when it can (and the second "started" says so), but with no
        worker left nothing would ever come: this is how such an attempt ends."""
        while not lost.is_set():
            await asyncio.sleep(WATCH_EVERY)
            if placements and placements[0] not in await self._live_workers():
                lost.set()

    async def _live_workers(self) -> frozenset[str]:
        """The workers' addresses, asked of the scheduler at most once per WATCH_EVERY however
        many attempts watch."""
        loop = asyncio.get_running_loop()
        if self._seen is None or loop.time() - self._seen[0] >= WATCH_EVERY:
            self._seen = (loop.time(), frozenset(await self._workers()))
        return self._seen[1]

    async def _some_worker(self) -> bool:
        """Whether a worker is there, or comes within WORKER_WAIT (a nanny restarting one)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + WORKER_WAIT
        while not await self._workers():
            if loop.time() >= deadline:
                return False
            await asyncio.sleep(0.5)
        return True

    def _scope_for(self, task: TaskBase, scope: Scope) -> Scope:
        """``scope`` with only the task views ``task``'s templates read.

        The run's scope holds a view of every task; sent whole, each attempt's message (and
        the work of pickling, sizing and unpickling it on the engine, the scheduler and the
        worker) would grow with the size of the run.
        """
        known = self._reads.get(id(task))
        if known is None or known[0] is not task:
            known = self._reads[id(task)] = (task, _task_references(task))
        reads = known[1]
        if reads is None:  # a template that does not parse: the worker reports it
            return scope
        return replace(scope, tasks={i: scope.tasks[i] for i in reads if i in scope.tasks})

    async def _outcome(self, future: Future, lost: asyncio.Event) -> TaskResult | None:
        """The attempt's result, or None when its worker was lost first."""
        from distributed.scheduler import KilledWorker

        from ..execution.states import State
        from ..tasks.base import TaskResult

        async def result_of() -> Any:
            return await future

        done = asyncio.ensure_future(result_of())
        lost_wait = asyncio.ensure_future(lost.wait())
        try:
            await asyncio.wait({done, lost_wait}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in (done, lost_wait):
                if not waiter.done():
                    waiter.cancel()
            # collected here, so a cancelled Dask future is never an unretrieved error
            await asyncio.gather(done, lost_wait, return_exceptions=True)
        if done.cancelled():
            return None
        try:
            result: TaskResult = done.result()
        except KilledWorker as exc:
            return TaskResult(
                status=State.CRASHED, exit_code=None, error=str(exc), infrastructure=True
            )
        return result

    async def _stop(self, future: Future) -> None:
        """Cancel the attempt on its worker; the worker stops the attempt's processes."""
        if self.client is None:
            return
        try:
            await asyncio.wait_for(self.client.cancel(future), timeout=10)
        except (asyncio.TimeoutError, OSError):
            pass


def _task_references(task: TaskBase) -> frozenset[str] | None:
    """The ids of the tasks ``task``'s templates read (``${tasks.ID...}`` in any of its
    fields), or None when one of them does not parse."""
    from ..definition.templates import find_references
    from ..errors import ExpressionError

    reads: set[str] = set()
    stack: list[Any] = [task.model_dump()]
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            stack.extend(value.values())
        elif isinstance(value, (list, tuple)):
            stack.extend(value)
        elif isinstance(value, str) and "${" in value:
            try:
                references = find_references(value)
            except ExpressionError:
                return None
            reads.update(ref.task_id for ref in references if ref.task_id)
    return frozenset(reads)


def _unplaceable(tasks: list[TaskBase], workers: dict[str, Any]) -> list[str]:
    """One message per task whose resources no worker declares (it would wait forever)."""
    problems = []
    for task in tasks:
        if not task.resources:
            continue
        fits = [
            address
            for address, info in workers.items()
            if all(
                (info.get("resources") or {}).get(name, 0) >= amount
                for name, amount in task.resources.items()
            )
        ]
        if not fits:
            declared = {address: info.get("resources") or {} for address, info in workers.items()}
            problems.append(
                f"task '{task.id or task.type}' needs resources {task.resources}, which no "
                f"worker has (workers declare: {declared})"
            )
    return problems
