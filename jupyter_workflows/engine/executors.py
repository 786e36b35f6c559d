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

import socket
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

    async def run_attempt(
        self, task_type: TaskType, task: TaskBase, ctx: TaskContext
    ) -> TaskResult:
        """Run one attempt to its end; cancellation must stop it (and what it started)."""
        ...

    async def close(self) -> None:
        """Release what the executor holds (connections, a cluster it started)."""
        ...


class LocalExecutor:
    """Runs attempts in this process's event loop."""

    name = "local"
    address: str | None = None
    dashboard: str | None = None

    def __init__(self) -> None:
        self.host = socket.gethostname()

    async def start(self, workflow: Workflow, project_root: str) -> None:
        pass

    async def run_attempt(
        self, task_type: TaskType, task: TaskBase, ctx: TaskContext
    ) -> TaskResult:
        if task_type.remote:  # composites run their children, which say where they ran
            ctx.emit_placement(self.name, None, self.host)
        return await task_type.run(task, ctx)

    async def close(self) -> None:
        pass


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
