"""Where one attempt of one task runs: the executor seam.

The engine keeps the DAG, retries, the deadline, templating and every record; an executor only
runs an attempt somewhere and returns its ``TaskResult``. ``local`` (the default) runs it in
this process's event loop, so the processes it starts are children of this process. Executors
are named in ``plugins.EXECUTORS``; another package adds one through the entry-point group
``jupyter_workflows.executors`` (a class whose instances follow ``Executor``).

An executor that runs attempts elsewhere must stream the attempt's output lines and progress
back through ``ctx.emit_line`` / ``ctx.emit_progress`` while it runs, stop the attempt's whole
process tree when the awaiting coroutine is cancelled (a timeout or a cancelled run), and
report a lost worker as ``State.CRASHED`` rather than as the task's failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Iterable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from ..errors import UnknownPlugin, WorkflowError
from ..plugins import EXECUTORS

if TYPE_CHECKING:
    from ..definition.model import TaskBase, Workflow
    from ..tasks.base import TaskContext, TaskResult, TaskType


class Executor(Protocol):
    name: str
    address: str | None  # a cluster's scheduler, once started
    dashboard: str | None  # where to watch it, if it has a dashboard

    async def start(self, workflow: Workflow, project_root: str) -> None:
        """Get ready for this run's attempts; refuse (``WorkflowError``) what it cannot run."""
        ...

    def reserve(self, task: TaskBase) -> AbstractAsyncContextManager[Any]:
        """Held around an attempt from before it takes a slot until it ends: what it needs of
        the executor's own capacity (local resources); nothing, where the cluster places."""
        ...

    async def run_attempt(
        self, task_type: TaskType, task: TaskBase, ctx: TaskContext
    ) -> TaskResult:
        """Run one attempt to its end; cancellation must stop it (and what it started)."""
        ...

    async def close(self) -> None:
        """Release what the executor holds (connections, a cluster it started)."""
        ...


class LocalExecutor:
    """Runs attempts in this process's event loop.

    A task's ``resources`` are limits on this machine: attempts hold their amounts while they
    run, against ``resources`` in the project config (a resource it does not declare has as
    much as the largest single request, so such tasks run one at a time).
    """

    name = "local"
    address: str | None = None
    dashboard: str | None = None

    def __init__(self) -> None:
        self.host = socket.gethostname()
        self.resources = ResourcePool({})

    async def start(self, workflow: Workflow, project_root: str) -> None:
        from ..project import local_resources

        wanted = [task.resources for task in all_tasks(workflow.tasks) if task.resources]
        if not wanted:
            return
        capacity = local_resources(Path(project_root))
        for request in wanted:
            for name in request:
                capacity.setdefault(name, 0.0)
        largest = {name: max(r.get(name, 0.0) for r in wanted) for name in capacity}
        for name, have in list(capacity.items()):
            if have == 0.0:  # not declared: each request fits alone
                capacity[name] = largest[name]
            elif largest[name] > have:
                raise WorkflowError(
                    f"a task needs {largest[name]:g} {name}, and this machine has {have:g} "
                    "(resources in the project config)"
                )
        self.resources = ResourcePool(capacity)

    def reserve(self, task: TaskBase) -> AbstractAsyncContextManager[Any]:
        if not task.resources:
            return contextlib.nullcontext()
        return self.resources.holding(task.resources)

    async def run_attempt(
        self, task_type: TaskType, task: TaskBase, ctx: TaskContext
    ) -> TaskResult:
        if task_type.remote:  # composites run their children, which say where they ran
            ctx.emit_placement(self.name, None, self.host)
        return await task_type.run(task, ctx)

    async def close(self) -> None:
        pass


class ResourcePool:
    """Amounts of named resources, held by attempts while they run."""

    def __init__(self, capacity: dict[str, float]):
        self.free = dict(capacity)
        self._changed = asyncio.Condition()

    @contextlib.asynccontextmanager
    async def holding(self, request: dict[str, float]) -> AsyncIterator[None]:
        async with self._changed:
            await self._changed.wait_for(
                lambda: all(self.free.get(n, 0.0) >= a for n, a in request.items())
            )
            for name, amount in request.items():
                self.free[name] -= amount
        try:
            yield
        finally:
            async with self._changed:
                for name, amount in request.items():
                    self.free[name] += amount
                self._changed.notify_all()


def all_tasks(tasks: Iterable[TaskBase]) -> list[TaskBase]:
    """Every task of a workflow: composites' children and inline handlers included."""
    found: list[TaskBase] = []
    stack = list(tasks)
    while stack:
        task = stack.pop()
        found.append(task)
        for value in vars(task).values():
            children = value if isinstance(value, list) else [value]
            stack.extend(child for child in children if hasattr(child, "resources"))
    return found


def make_executor(executor: str | Executor | None, cluster: Any = None) -> Executor:
    """An executor from a name (``"local"``, ``"dask"``, or one a plugin adds) or an instance.

    ``cluster`` (a scheduler address or a ``distributed.Client``) implies ``dask``.
    """
    if executor is None and cluster is None:
        return LocalExecutor()
    if executor is not None and not isinstance(executor, str):
        return executor
    name = executor or "dask"
    if cluster is not None and name != "dask":
        raise WorkflowError(f"a cluster is for the dask executor, not '{name}'")
    try:
        factory = EXECUTORS.load(name)
    except UnknownPlugin as exc:
        raise WorkflowError(str(exc)) from None
    instance: Executor = factory(cluster) if name == "dask" else factory()
    return instance
