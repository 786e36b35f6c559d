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

from typing import TYPE_CHECKING, Protocol

from ..errors import UnknownPlugin, WorkflowError
from ..plugins import EXECUTORS

if TYPE_CHECKING:
    from ..definition.model import TaskBase
    from ..tasks.base import TaskContext, TaskResult, TaskType


class Executor(Protocol):
    name: str

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

    async def run_attempt(
        self, task_type: TaskType, task: TaskBase, ctx: TaskContext
    ) -> TaskResult:
        return await task_type.run(task, ctx)

    async def close(self) -> None:
        pass


def make_executor(executor: str | Executor | None) -> Executor:
    """An executor instance from a name (``"local"``, or one a plugin adds) or an instance."""
    if executor is None:
        return LocalExecutor()
    if not isinstance(executor, str):
        return executor
    try:
        factory = EXECUTORS.load(executor)
    except UnknownPlugin as exc:
        raise WorkflowError(str(exc)) from None
    instance: Executor = factory()
    return instance
