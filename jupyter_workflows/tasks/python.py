"""``python``: a script file or inline code, in the task's virtualenv or the current interpreter."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

from ..definition.templates import render
from .base import ModelAt, TaskContext, TaskResult, TaskType, models_from

if TYPE_CHECKING:
    from .python_model import PythonTask

__getattr__ = models_from("jupyter_workflows.tasks.python_model", "PythonTask")


def interpreter(env: dict[str, str] | None) -> str:
    """The venv's python when the task's environment sets VIRTUAL_ENV, else this interpreter.

    ``sys.executable`` rather than ``python3`` on PATH: a pyenv shim costs ~120 ms per start.
    """
    venv = (env or {}).get("VIRTUAL_ENV")
    if venv:
        for name in ("bin/python", "bin/python3", "Scripts/python.exe"):
            candidate = os.path.join(venv, name)
            if os.path.exists(candidate):
                return candidate
    return sys.executable


class PythonType(TaskType):
    name = "python"
    model = ModelAt("jupyter_workflows.tasks.python_model:PythonTask")
    path_keys = ("script", "cwd")

    async def run(self, task: PythonTask, ctx: TaskContext) -> TaskResult:  # type: ignore[override]
        from ._spawn import run_argv, task_cwd

        python = interpreter(task.environment)
        if task.environment.get("VIRTUAL_ENV") and python == sys.executable:
            venv = task.environment["VIRTUAL_ENV"]
            return TaskResult.failure(f"VIRTUAL_ENV={venv} has no bin/python", exit_code=127)
        args = [render(a, ctx.scope) for a in task.args]
        if task.script is not None:
            script = ctx.resolve_path(render(task.script, ctx.scope), "script")
            if not script.is_file():
                return TaskResult.failure(f"script {script} not found", exit_code=2)
            argv = [python, str(script), *args]
        else:
            # Inline code is not templated: a value pasted into source code could become code.
            # Read inputs from the environment (os.environ) instead.
            argv = [python, "-c", task.code or "", *args]
        return await run_argv(argv, ctx, task_cwd(task.cwd, ctx))
