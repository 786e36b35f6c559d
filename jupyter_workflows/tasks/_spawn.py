"""Shared by the task types that are one process: run argv, map the outcome to a TaskResult."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ..execution.states import State
from .base import TaskContext, TaskResult, parse_result, read_outputs
from .process import run_process


async def run_argv(argv: Sequence[str], ctx: TaskContext, cwd: Path) -> TaskResult:
    """Run one process for the attempt; stdout becomes ``result``, $WORKFLOW_OUTPUT ``outputs``."""
    if not cwd.is_dir():
        return TaskResult.failure(f"working directory {cwd} does not exist")
    try:
        outcome = await run_process(
            argv,
            cwd=cwd,
            env=ctx.env,
            on_line=ctx.emit_line,
            kill_grace=ctx.kill_grace,
            custody=ctx.custody,
            masker=ctx.masker,
        )
    except FileNotFoundError as exc:
        return TaskResult.failure(f"cannot start '{argv[0]}': {exc.strerror}", exit_code=127)
    except PermissionError as exc:
        return TaskResult.failure(f"cannot start '{argv[0]}': {exc.strerror}", exit_code=126)
    outputs = read_outputs(ctx.output_file)
    if outcome.exit_code == 0:
        return TaskResult(exit_code=0, result=parse_result(outcome.stdout), outputs=outputs)
    if outcome.signal_name:
        error = f"killed by {outcome.signal_name}"
    else:
        error = f"exited with code {outcome.exit_code}"
    cause = last_message(outcome.stderr_tail)
    if cause:
        error += f": {cause}"
    return TaskResult(
        status=State.FAILED,
        exit_code=outcome.exit_code,
        result=parse_result(outcome.stdout),
        outputs=outputs,
        error=error,
    )


def last_message(stderr: Sequence[str]) -> str | None:
    """The line of stderr that names the failure.

    Python ends a traceback with it; node follows it with the stack and its own version
    ("Node.js v20.1.0"), which are skipped.
    """
    for line in reversed(stderr):
        text = line.strip()
        if text and not text.startswith(("at ", "Node.js v")):
            return text
    return None


def task_cwd(cwd: str | None, ctx: TaskContext) -> Path:
    """The working directory: ``cwd`` under the project's path policy, else the root."""
    return ctx.resolve_path(cwd, "cwd") if cwd else ctx.project_root
