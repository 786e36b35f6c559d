"""The work of ``data_processor`` tasks: one processor run per input file, in parallel."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...definition.templates import render
from ...execution.states import State
from .._spawn import last_message, task_cwd
from ..base import TaskContext, TaskResult, TaskType
from ..javascript import TS_SUFFIXES, _find
from ..paths import PathRefused, glob_folder
from ..process import ProcessOutcome, run_process
from ..python import interpreter
from .files import (
    ItemError,
    find_inputs,
    parse_output,
    read_input,
    shown,
    write_output,
)

if TYPE_CHECKING:
    from . import DataProcessorTask

# Over this many bytes of JSON, INPUT_DATA is left out (the kernel's cap is 128 KiB per string).
INPUT_DATA_LIMIT = 100 * 1024
# How many failed files the task's error lists by name.
MAX_LISTED = 5
# run_process reads stdout line by line and cuts lines over 1 MiB; a processor's output is one
# JSON value that may well be a longer line, so the shell sends it to a file instead. `exec`
# replaces the shell: the processor keeps its pid and session, and timeouts still stop it.
_TO_FILE = 'exec "$@" >"$0"'


@dataclass
class _Job:
    """What the items of one attempt share."""

    ctx: TaskContext
    runner: list[str]
    cwd: Path
    workdir: Path
    total: int
    done: int = 0


class DataProcessorRunner(TaskType):
    name = "data_processor"

    async def run(self, task: DataProcessorTask, ctx: TaskContext) -> TaskResult:  # type: ignore[override]
        pattern = render(task.input.path, ctx.scope)
        ctx.resolve_path(glob_folder(pattern), "input.path")  # what the pattern can reach
        sources = find_inputs(pattern, ctx.project_root)
        if not sources:
            # Left retryable: with `retry`, a task can wait for files another process delivers.
            return TaskResult.failure(
                f"no files match {pattern} (relative to the project root {ctx.project_root})",
                exit_code=1,
            )
        runner = _runner(task, ctx)
        if isinstance(runner, TaskResult):
            return runner
        cwd = task_cwd(task.cwd, ctx)
        if not cwd.is_dir():
            return _final(f"working directory {cwd} does not exist", exit_code=None)
        targets = _targets(task, sources, ctx)
        if isinstance(targets, TaskResult):
            return targets
        workdir = Path(tempfile.mkdtemp(prefix="jupyter-workflows-data-"))
        job = _Job(ctx, runner, cwd, workdir, total=len(sources))
        limit = asyncio.Semaphore(task.max_parallel)
        try:
            pairs = enumerate(zip(sources, targets, strict=True))
            items = await _gather([_item(job, limit, i, s, t) for i, (s, t) in pairs])
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        return _summary(items, ctx)


def _final(error: str, exit_code: int | None = 1) -> TaskResult:
    """A failure of the task's set-up, which another attempt would meet again."""
    result = TaskResult.failure(error, exit_code=exit_code)
    result.retryable = False
    return result


def _runner(task: DataProcessorTask, ctx: TaskContext) -> list[str] | TaskResult:
    """The argv that runs the processor script, or why it cannot run."""
    script = ctx.resolve_path(render(task.processor.script, ctx.scope), "processor.script")
    if not script.is_file():
        return _final(f"processor script {script} not found", exit_code=2)
    if task.processor.type == "python":
        python = interpreter(task.environment)
        if task.environment.get("VIRTUAL_ENV") and python == sys.executable:
            venv = task.environment["VIRTUAL_ENV"]
            return _final(f"VIRTUAL_ENV={venv} has no bin/python", exit_code=127)
        return [python, str(script)]
    program = "tsx" if script.suffix in TS_SUFFIXES else "node"
    found = _find(program, ctx.project_root, ctx.env.get("PATH", os.defpath))
    if found is None:
        hint = "install Node.js to run javascript processors"
        if program == "tsx":
            hint = "install it with `npm install --save-dev tsx`"
        return _final(f"{program} was not found on PATH: {hint}", exit_code=127)
    return [found, str(script)]


def _targets(
    task: DataProcessorTask, sources: list[Path], ctx: TaskContext
) -> list[Path | ItemError | None] | TaskResult:
    """Each file's output path (an ItemError when refused); two files may not share one."""
    if task.output is None:
        return [None] * len(sources)
    targets: list[Path | ItemError | None] = []
    claimed: dict[Path, list[Path]] = {}
    for source in sources:
        rendered = render(task.output.path, ctx.scope.child(input=source.stem))
        try:
            target = ctx.resolve_path(rendered, "output.path")
        except PathRefused as exc:
            targets.append(ItemError(str(exc)))
            continue
        targets.append(target)
        claimed.setdefault(target, []).append(source)
    for target, owners in claimed.items():
        if len(owners) > 1:
            names = ", ".join(shown(s, ctx.project_root) for s in owners[:3])
            more = ", ..." if len(owners) > 3 else ""
            return _final(
                f"output path {shown(target, ctx.project_root)} is the same for {len(owners)} "
                f"input files ({names}{more}): put ${{input}} in output.path"
            )
    return targets


async def _item(
    job: _Job, limit: asyncio.Semaphore, index: int, source: Path, target: Path | ItemError | None
) -> dict[str, Any]:
    """Read, process and write one file; every problem of the file's own ends up in ``error``."""
    root = job.ctx.project_root
    item: dict[str, Any] = {
        "input": shown(source, root),
        "output": shown(target, root) if isinstance(target, Path) else None,
        "status": "failed",
        "error": None,
    }
    async with limit:
        started = time.monotonic()
        try:
            if isinstance(target, ItemError):
                raise target
            data = await asyncio.to_thread(read_input, _checked(job.ctx, source))
            value = await _process(job, index, source, data)
            if target is None:
                item["result"] = value
            else:
                await asyncio.to_thread(write_output, target, value, root)
            item["status"] = "succeeded"
        except ItemError as exc:
            item["error"] = str(exc)
        elapsed = time.monotonic() - started
    _report(job, item, elapsed)
    return item


async def _process(job: _Job, index: int, source: Path, data: Any) -> Any:
    """Run the processor on ``data``; its stdout parsed as JSON."""
    ctx = job.ctx
    payload = json.dumps(data, ensure_ascii=False).encode("utf-8")
    input_file = job.workdir / f"{index}.input.json"
    stdout_file = job.workdir / f"{index}.stdout"
    await asyncio.to_thread(input_file.write_bytes, payload)
    env = dict(ctx.env)
    env.pop("INPUT_DATA", None)  # never an inherited value standing in for a left-out one
    env.update(INPUT_FILE=str(input_file), INPUT_PATH=str(source), INPUT_NAME=source.stem)
    too_big = len(payload) > INPUT_DATA_LIMIT
    if not too_big:
        env["INPUT_DATA"] = payload.decode("utf-8")
    label = shown(source, ctx.project_root)

    def on_line(stream: str, line: str) -> None:
        ctx.emit_line(stream, f"{label}: {line}")

    try:
        outcome = await run_process(
            ["/bin/sh", "-c", _TO_FILE, str(stdout_file), *job.runner],
            cwd=job.cwd,
            env=env,
            on_line=on_line,
            kill_grace=ctx.kill_grace,
            stdin=payload,
            keep_stdout=False,
            custody=ctx.custody,
            masker=ctx.masker,
        )
    except OSError as exc:
        raise ItemError(f"cannot start the processor: {exc.strerror or exc}") from None
    if outcome.exit_code != 0:
        raise ItemError(_exit_error(outcome, too_big))
    text = await asyncio.to_thread(stdout_file.read_text, encoding="utf-8", errors="replace")
    return parse_output(text)


def _checked(ctx: TaskContext, source: Path) -> Path:
    """The input file under the path policy: one matched through a symlink to elsewhere is
    refused (its item fails, the others go on)."""
    try:
        return ctx.resolve_path(source, "input.path")
    except PathRefused as exc:
        raise ItemError(str(exc)) from None


def _exit_error(outcome: ProcessOutcome, too_big: bool) -> str:
    if outcome.signal_name:
        error = f"processor killed by {outcome.signal_name}"
    else:
        error = f"processor exited with code {outcome.exit_code}"
    cause = last_message(outcome.stderr_tail)
    if cause:
        error += f": {cause}"
    if too_big:
        error += (
            f" (INPUT_DATA was not set: the input's JSON is over {INPUT_DATA_LIMIT // 1024} KiB;"
            " read INPUT_FILE or stdin)"
        )
    return error


def _report(job: _Job, item: dict[str, Any], elapsed: float) -> None:
    job.done += 1
    if item["status"] == "succeeded":
        where = item["output"] or "result"
        job.ctx.emit_line("stdout", f"{item['input']} -> {where} in {elapsed * 1000:.0f} ms")
    else:
        job.ctx.emit_line("stderr", f"{item['input']}: {item['error']}")
    job.ctx.emit_progress(job.done, job.total, item["input"], item["status"])


def _summary(items: list[dict[str, Any]], ctx: TaskContext) -> TaskResult:
    failed = [item for item in items if item["status"] != "succeeded"]
    result = {
        "processed": len(items),
        "succeeded": len(items) - len(failed),
        "failed": len(failed),
        "items": items,
    }
    line = f"{result['succeeded']}/{len(items)} files processed"
    if failed:
        causes = "; ".join(f"{item['input']}: {item['error']}" for item in failed[:MAX_LISTED])
        more = f"; and {len(failed) - MAX_LISTED} more" if len(failed) > MAX_LISTED else ""
        line += f", {len(failed)} failed: {causes}{more}"
    ctx.emit_line("stdout", line)
    if failed:
        return TaskResult(status=State.FAILED, exit_code=1, result=result, error=line)
    return TaskResult(exit_code=0, result=result)


async def _gather(coros: list[Coroutine[Any, Any, dict[str, Any]]]) -> list[dict[str, Any]]:
    """All results in order; if anything escapes (a cancellation), every item is stopped
    and its processor killed before this returns."""
    tasks = [asyncio.ensure_future(coro) for coro in coros]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
