"""``shell``: a command line run by /bin/sh (or the task's ``shell``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from ..definition.model import TaskBase
from .base import TaskContext, TaskResult, TaskType


class ShellTask(TaskBase):
    type: Literal["shell"]
    command: str
    shell: str = Field("/bin/sh", description="The shell that runs the command.")


class ShellType(TaskType):
    name = "shell"
    model = ShellTask
    path_keys = ("cwd",)

    async def run(self, task: ShellTask, ctx: TaskContext) -> TaskResult:  # type: ignore[override]
        from ..definition.shell_quoting import render_shell
        from ._spawn import run_argv, task_cwd

        # Values from ${...} are escaped for the quoting context they land in, so they stay data.
        command = render_shell(task.command, ctx.scope)
        return await run_argv([task.shell, "-c", command], ctx, task_cwd(task.cwd, ctx))
