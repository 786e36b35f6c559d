"""The work of the composite types: run children through the engine and combine them."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Sequence
from typing import TYPE_CHECKING, Any

from ...definition.conditions import parse_condition
from ...definition.templates import TaskView, render_value, to_text
from ...execution.states import FAILURES, State
from ..base import TaskContext, TaskResult, TaskType

if TYPE_CHECKING:
    from ...definition.model import AnyTask
    from . import ConditionalTask, LoopTask, ParallelTask


def _result_of(view: TaskView, **extra: Any) -> TaskResult:
    """The composite ends as its child did."""
    return TaskResult(
        status=State(view.status),
        exit_code=view.exit_code,
        result=view.result,
        outputs=dict(view.outputs or {}),
        error=view.error,
        **extra,
    )


class ConditionalRunner(TaskType):
    name = "conditional"
    uses_slot = False

    async def run(self, task: ConditionalTask, ctx: TaskContext) -> TaskResult:  # type: ignore[override]
        assert ctx.run_child is not None and ctx.skip_child is not None
        taken = parse_condition(task.condition).evaluate(ctx.scope)
        branch, label = (task.then, "then") if taken else (task.else_, "else")
        other, other_label = (task.else_, "else") if taken else (task.then, "then")
        if other is not None:
            reason = f"condition is {'true' if taken else 'false'}: {task.condition}"
            ctx.skip_child(other, f"{ctx.task_id}.{other_label}", reason)
        if branch is None:
            return TaskResult(result=None, outputs={"branch": "none"})
        view = await ctx.run_child(branch, f"{ctx.task_id}.{label}")
        result = _result_of(view)
        result.outputs["branch"] = label
        if result.status in FAILURES:
            result.error = f"the '{label}' branch {view.status}: {view.error}"
        return result


class ParallelRunner(TaskType):
    name = "parallel"
    uses_slot = False

    async def run(self, task: ParallelTask, ctx: TaskContext) -> TaskResult:  # type: ignore[override]
        assert ctx.run_child is not None
        run_child = ctx.run_child
        limit = asyncio.Semaphore(task.max_parallel) if task.max_parallel else None
        ids = [child.id or f"{ctx.task_id}.{i}" for i, child in enumerate(task.tasks)]

        async def one(child: AnyTask, child_id: str) -> TaskView:
            async with limit or contextlib.nullcontext():
                return await run_child(child, child_id)  # type: ignore[no-any-return]

        jobs = [asyncio.ensure_future(one(c, i)) for c, i in zip(task.tasks, ids, strict=True)]
        try:
            if task.wait_for in ("any", "first"):
                return await _first_success(jobs, ids, any_end=task.wait_for == "first")
            views = await asyncio.gather(*jobs)
        finally:
            await _cancel(jobs)
        return _summarise(dict(zip(ids, views, strict=True)))


async def _first_success(
    jobs: list[asyncio.Task[TaskView]], ids: list[str], *, any_end: bool = False
) -> TaskResult:
    """Wait until one child succeeds (``any_end``: until one ends, however it ended: that
    child decides); the others are cancelled (and recorded so)."""
    by_job = dict(zip(jobs, ids, strict=True))
    pending = set(jobs)
    views: dict[str, TaskView] = {}
    while pending:
        done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
        for job in sorted(done, key=jobs.index):
            view = job.result()
            views[by_job[job]] = view
            if view.status == str(State.SUCCEEDED) or any_end:
                await _cancel(list(pending))
                outputs = {"winner": by_job[job]}
                if view.status == str(State.SUCCEEDED):
                    return TaskResult(result={by_job[job]: view.result}, outputs=outputs)
                return TaskResult(
                    status=State.FAILED,
                    exit_code=view.exit_code,
                    result={by_job[job]: view.result},
                    outputs=outputs,
                    error=f"the first child to end, '{by_job[job]}', {view.status}: {view.error}",
                )
    return _summarise(views, error="no child succeeded (wait_for: any)")


def _summarise(views: dict[str, TaskView], error: str | None = None) -> TaskResult:
    failed = [cid for cid, v in views.items() if v.status in {str(s) for s in FAILURES}]
    result = {cid: v.result for cid, v in views.items()}
    if not failed and error is None:
        return TaskResult(result=result)
    return TaskResult(
        status=State.FAILED,
        exit_code=None,
        result=result,
        error=error or f"{len(failed)} of {len(views)} failed: {', '.join(failed)}",
    )


async def _cancel(jobs: Sequence[asyncio.Future[Any]]) -> None:
    for job in jobs:
        job.cancel()
    await asyncio.gather(*jobs, return_exceptions=True)


class LoopRunner(TaskType):
    name = "loop"
    uses_slot = False

    async def run(self, task: LoopTask, ctx: TaskContext) -> TaskResult:  # type: ignore[override]
        assert ctx.run_child is not None and ctx.skip_child is not None
        items = _items(task, ctx)
        if isinstance(items, TaskResult):
            return items
        iteration = _Iterations(task, ctx, items)
        await iteration.run_all()
        return iteration.result()


def _items(task: LoopTask, ctx: TaskContext) -> list[Any] | TaskResult:
    value: Any = task.items
    if isinstance(value, str):
        value = render_value(value, ctx.scope)
        if isinstance(value, str):  # a reference rendered inside text, or a JSON list as text
            try:
                value = json.loads(value)
            except ValueError:
                pass
    if not isinstance(value, list):
        shown = to_text(value)[:80]
        return TaskResult(
            status=State.FAILED,
            exit_code=None,
            error=f"loop items must be a list, got {type(value).__name__}: {shown}",
            retryable=False,
        )
    return value


class _Iterations:
    """The iterations of one loop attempt: in order, or up to max_parallel at once."""

    def __init__(self, task: LoopTask, ctx: TaskContext, items: list[Any]):
        self.task, self.ctx, self.items = task, ctx, items
        self.views: dict[int, TaskView] = {}
        self.stopped = False

    def _place(self, index: int) -> tuple[str, dict[str, Any]]:
        item = self.items[index]
        label = self.task.body.name or self.task.body.type
        name = f"{label} ({self.task.item}={to_text(item)[:40]})"
        how = {"variables": {self.task.item: item, "loop_index": index}, "name": name}
        return f"{self.ctx.task_id}[{index}]", how

    async def _one(self, index: int) -> None:
        child_id, how = self._place(index)
        if self.stopped:
            assert self.ctx.skip_child is not None
            self.ctx.skip_child(self.task.body, child_id, "an earlier iteration failed", **how)
            return
        assert self.ctx.run_child is not None
        view = await self.ctx.run_child(self.task.body, child_id, **how)
        self.views[index] = view
        if self.task.stop_on_failure and view.status in {str(s) for s in FAILURES}:
            self.stopped = True

    async def run_all(self) -> None:
        limit = asyncio.Semaphore(self.task.max_parallel)

        async def bounded(index: int) -> None:
            async with limit:
                await self._one(index)

        jobs: list[Awaitable[None]] = [bounded(i) for i in range(len(self.items))]
        tasks = [asyncio.ensure_future(job) for job in jobs]
        try:
            await asyncio.gather(*tasks)
        finally:
            await _cancel(tasks)

    def result(self) -> TaskResult:
        results = [
            self.views[i].result if i in self.views else None for i in range(len(self.items))
        ]
        failures = {str(s) for s in FAILURES}
        failed = [i for i, v in self.views.items() if v.status in failures]
        outputs = {"iterations": len(self.items), "failed": len(failed)}
        if not failed:
            return TaskResult(result=results, outputs=outputs)
        first = self.views[failed[0]]
        return TaskResult(
            status=State.FAILED,
            exit_code=first.exit_code,
            result=results,
            outputs=outputs,
            error=f"{len(failed)} of {len(self.items)} iterations failed; "
            f"first: [{failed[0]}] {first.error}",
        )
