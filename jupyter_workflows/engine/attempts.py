"""Running one task: its attempts, retry waits, timeout, and its on_failure handler."""

from __future__ import annotations

import asyncio
import contextlib
import random
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..durations import format_duration
from ..errors import TaskTypeNotImplemented, WorkflowError
from ..events import (
    AttemptEnded,
    AttemptStarted,
    OutputLine,
    TaskEnded,
    TaskProgress,
    TaskStarted,
    now,
)
from ..expressions import TaskView, render
from ..model import AnyTask, Retry, TaskBase
from ..states import State
from ..tasks.base import TaskContext, TaskResult, TaskType
from ..tasks.registry import get_task_type

if TYPE_CHECKING:
    from .run import WorkflowRun

RETRYABLE = frozenset({State.FAILED, State.TIMED_OUT})


class TaskRunner:
    """Executes tasks for one run; the run decides *when*, this decides *how*."""

    def __init__(
        self,
        run: WorkflowRun,
        *,
        semaphore: asyncio.Semaphore,
        process_env: dict[str, str],
        project_root: Path,
        kill_grace: float,
        workdir: Path,
    ):
        self.run_ = run
        self.semaphore = semaphore
        self.process_env = process_env
        self.project_root = project_root
        self.kill_grace = kill_grace
        self.workdir = workdir
        self.defaults = run.workflow.defaults
        self.used_types: set[TaskType] = set()  # told when the run ends (TaskType.after_run)

    async def run(self, task: AnyTask, task_id: str | None = None) -> None:
        """Run ``task`` to a terminal state, emitting its events; never raises but cancellation."""
        task_id = task_id or task.id or task.type
        emit = self.run_.emit
        execution_id = self.run_.execution.id
        result = TaskResult(status=State.CANCELLED, exit_code=None, error="cancelled")
        attempts = 0
        try:
            result, attempts = await self._attempts(task, task_id)
        finally:
            record = self.run_.execution.tasks.get(task_id)
            started_at = record.started_at if record else None
            # Also on cancellation: the record must say how the task ended.
            ended_at = now()
            self.run_.views[task_id] = TaskView(
                result=result.result,
                exit_code=result.exit_code,
                status=str(result.status),
                outputs=result.outputs,
                error=result.error,
                duration=None if started_at is None else ended_at - started_at,
                started_at=started_at,
            )
            emit(
                TaskEnded(
                    execution_id=execution_id,
                    task_id=task_id,
                    status=str(result.status),
                    started_at=started_at,
                    exit_code=result.exit_code,
                    result=result.result,
                    outputs=result.outputs,
                    error=result.error,
                    attempts=attempts,
                    name=task.name,
                    type=task.type,
                    at=ended_at,
                )
            )
        if result.status is not State.SUCCEEDED and task.on_failure is not None:
            await self._on_failure(task, task_id)

    async def _attempts(self, task: AnyTask, task_id: str) -> tuple[TaskResult, int]:
        retry: Retry | None = task.retry or self.defaults.retry
        total = retry.attempts if retry else 1
        task_type = _task_type(task.type)
        number = 0
        while True:
            number += 1
            async with self._slot(task_type):
                attempt_started = now()
                if number == 1:  # started = holding a slot, not waiting for one
                    self.run_.emit(
                        TaskStarted(
                            execution_id=self.run_.execution.id,
                            task_id=task_id,
                            name=task.name,
                            type=task.type,
                            at=attempt_started,
                        )
                    )
                result = await self._attempt(task_type, task, task_id, number)
            retry_in = None
            if task_type is not None:
                self.used_types.add(task_type)
            if (
                result.status in RETRYABLE
                and result.retryable
                and number < total
                and retry
                and task_type is not None
            ):
                retry_in = _jittered(retry.delay_before(number + 1), retry.jitter)
            self.run_.emit(
                AttemptEnded(
                    execution_id=self.run_.execution.id,
                    task_id=task_id,
                    attempt=number,
                    status=str(result.status),
                    started_at=attempt_started,
                    exit_code=result.exit_code,
                    error=result.error,
                    retry_in=retry_in,
                )
            )
            if retry_in is None:
                return result, number
            await asyncio.sleep(retry_in)

    def _slot(self, task_type: TaskType | None) -> Any:
        if task_type is not None and not task_type.uses_slot:
            return contextlib.nullcontext()
        return self.semaphore

    async def _attempt(
        self, task_type: TaskType | None, task: AnyTask, task_id: str, number: int
    ) -> TaskResult:
        execution_id = self.run_.execution.id
        self.run_.emit(AttemptStarted(execution_id=execution_id, task_id=task_id, attempt=number))
        if task_type is None:
            return TaskResult(
                status=State.FAILED,
                exit_code=None,
                error=str(TaskTypeNotImplemented(task.type)),
                retryable=False,
            )
        timeout = task.timeout if task.timeout is not None else self.defaults.timeout
        try:
            ctx = self._context(task, task_id, number)
            if timeout is None:
                return await task_type.run(task, ctx)
            return await asyncio.wait_for(task_type.run(task, ctx), timeout)
        except asyncio.TimeoutError:
            return TaskResult(
                status=State.TIMED_OUT,
                exit_code=None,
                error=f"timed out after {format_duration(timeout)}",
            )
        except WorkflowError as exc:  # bad template, missing reference: the user's to fix
            return TaskResult(status=State.FAILED, exit_code=None, error=str(exc), retryable=False)
        except Exception as exc:  # a bug in a task type must fail the task, not the run
            for line in traceback.format_exc().splitlines():
                ctx_line = OutputLine(
                    execution_id=execution_id,
                    task_id=task_id,
                    attempt=number,
                    stream="stderr",
                    line=line,
                )
                self.run_.emit(ctx_line)
            return TaskResult.failure(f"internal error in task type '{task.type}': {exc!r}")

    def _context(self, task: TaskBase, task_id: str, number: int) -> TaskContext:
        run = self.run_
        output_file = self.workdir / f"{task_id}.{number}.out"
        env = dict(self.process_env)
        for key, value in task.environment.items():
            env[key] = render(value, run.scope)
        env["WORKFLOW_OUTPUT"] = str(output_file)
        env["WORKFLOW_EXECUTION_ID"] = run.execution.id
        env["WORKFLOW_NAME"] = run.workflow.name
        env["WORKFLOW_TASK_ID"] = task_id
        env["WORKFLOW_ATTEMPT"] = str(number)
        execution_id = run.execution.id
        emit = run.emit

        def emit_progress(step: int, total: int | None, label: str | None, status: str) -> None:
            emit(
                TaskProgress(
                    execution_id=execution_id,
                    task_id=task_id,
                    attempt=number,
                    step=step,
                    total=total,
                    label=label,
                    status=status,
                )
            )

        def emit_line(stream: str, line: str) -> None:
            emit(
                OutputLine(
                    execution_id=execution_id,
                    task_id=task_id,
                    attempt=number,
                    stream=stream,
                    line=line,
                )
            )

        return TaskContext(
            execution_id=execution_id,
            task_id=task_id,
            attempt=number,
            project_root=self.project_root,
            env=env,
            scope=run.scope,
            emit_line=emit_line,
            output_file=output_file,
            artifacts_dir=run.artifacts_dir,
            emit_progress=emit_progress,
            kill_grace=self.kill_grace,
        )

    async def _on_failure(self, task: TaskBase, task_id: str) -> None:
        handler: Any = task.on_failure
        if isinstance(handler, str):
            await self.run(self.run_.workflow.task(handler), handler)
        else:
            await self.run(handler, handler.id or f"{task_id}.on_failure")


def _task_type(name: str) -> TaskType | None:
    try:
        return get_task_type(name)
    except TaskTypeNotImplemented:
        return None


def _jittered(delay: float, jitter: float) -> float:
    if jitter <= 0:
        return delay
    return max(0.0, delay * (1 + random.uniform(-jitter, jitter)))
