"""``javascript``: a script run with node; TypeScript files through tsx."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from ..definition.templates import render
from .base import ModelAt, TaskContext, TaskResult, TaskType, models_from

if TYPE_CHECKING:
    from .javascript_model import JavaScriptTask

__getattr__ = models_from("jupyter_workflows.tasks.javascript_model", "JavaScriptTask")


TS_SUFFIXES = {".ts", ".mts", ".cts", ".tsx"}


def _find(program: str, project_root: Path, path: str | None) -> str | None:
    local = project_root / "node_modules" / ".bin" / program
    if local.exists():
        return str(local)
    import shutil  # not at import: every `workflow validate` imports this module

    return shutil.which(program, path=path)


class JavaScriptType(TaskType):
    name = "javascript"
    model = ModelAt("jupyter_workflows.tasks.javascript_model:JavaScriptTask")
    path_keys = ("script", "cwd")

    async def run(self, task: JavaScriptTask, ctx: TaskContext) -> TaskResult:  # type: ignore[override]
        from ._spawn import run_argv, task_cwd

        script = ctx.resolve_path(render(task.script, ctx.scope), "script")
        if not script.is_file():
            return TaskResult.failure(f"script {script} not found", exit_code=2)
        search_path = ctx.env.get("PATH", os.defpath)
        if script.suffix in TS_SUFFIXES:
            runner = _find("tsx", ctx.project_root, search_path)
            if runner is None:
                return TaskResult.failure(
                    f"{script.name} is TypeScript, which runs through tsx, and tsx was not found "
                    "on PATH or in node_modules/.bin: install it with `npm install --save-dev tsx`",
                    exit_code=127,
                )
        else:
            runner = _find("node", ctx.project_root, search_path)
            if runner is None:
                return TaskResult.failure(
                    "node was not found on PATH: install Node.js to run javascript tasks",
                    exit_code=127,
                )
        args = [render(a, ctx.scope) for a in task.args]
        return await run_argv([runner, str(script), *args], ctx, task_cwd(task.cwd, ctx))
