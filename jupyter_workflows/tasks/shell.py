"""``shell``: a command line run by /bin/sh (or the task's ``shell``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..definition.shell_quoting import render_shell
from ._spawn import run_argv, task_cwd
from .base import TaskContext, TaskResult, TaskType

if TYPE_CHECKING:
    from ..definition.model import ShellTask


class ShellType(TaskType):
    name = "shell"

    async def run(self, task: ShellTask, ctx: TaskContext) -> TaskResult:  # type: ignore[override]
        # Values from ${...} are escaped for the quoting context they land in, so they stay data.
        command = render_shell(task.command, ctx.scope)
        return await run_argv([task.shell, "-c", command], ctx, task_cwd(task.cwd, ctx))
