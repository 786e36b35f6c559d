"""``shell``: a command line run by /bin/sh (or the task's ``shell``)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from ..errors import ExpressionError
from .base import ModelAt, TaskContext, TaskResult, TaskType, models_from

if TYPE_CHECKING:
    from .shell_model import ShellTask

# Set by the file-change trigger (triggers/filewatch.py) from the name of a changed file.
_TRIGGER_ENV = frozenset(
    {"CHANGED_FILE", "CHANGED_FILE_RELATIVE", "FILE_EVENT", "FILE_NAME", "FILE_DIR", "FILE_EXT"}
)


__getattr__ = models_from("jupyter_workflows.tasks.shell_model", "ShellTask")


class ShellType(TaskType):
    name = "shell"
    model = ModelAt("jupyter_workflows.tasks.shell_model:ShellTask")
    path_keys = ("cwd",)

    async def run(self, task: ShellTask, ctx: TaskContext) -> TaskResult:  # type: ignore[override]
        from ..definition.templates import find_references
        from ._spawn import run_argv, task_cwd

        where = f"task '{ctx.task_id}', field 'command'"
        if find_references(task.command):
            from ..definition.shell_commands import SHELLS

            if os.path.basename(task.shell) not in SHELLS:
                raise ExpressionError(
                    f"{where}: ${{...}} references are only filled into commands for sh-family "
                    f"shells ({', '.join(sorted(SHELLS))}); '{task.shell}' may read the quoting "
                    "differently. Pass values through the task's environment instead",
                    task.command,
                )
        # Environment values that came from templates, a webhook request or a file name are
        # as untrusted as a templated value where the command evaluates a variable.
        untrusted = {
            name: value
            for name, value in ctx.env.items()
            if name in _TRIGGER_ENV
            or name.startswith("WEBHOOK_")
            or "${" in task.environment.get(name, "")
        }
        command = task.command
        # With no reference, nothing untrusted and plain ASCII (no mark characters), the shell
        # analysis would return the command as written: skip importing it (~15 ms a run).
        if "${" in command or untrusted or not command.isascii():
            from ..definition.shell_quoting import render_shell

            # Values from ${...} are escaped for the quoting context they land in, so they
            # stay data.
            command = render_shell(command, ctx.scope, where=where, untrusted_env=untrusted)
        return await run_argv([task.shell, "-c", command], ctx, task_cwd(task.cwd, ctx))
