"""Running one task: its attempts, retry waits, timeout, its callbacks, its children.

The runner sees the run through a narrow ``RunContext`` (ids, defaults, the template scope,
the event sink) and hands each attempt to an executor (``executors.py``), which decides where
it runs; the deadline, retries and every record stay here.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import traceback
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..definition.durations import format_duration
from ..definition.templates import Scope, TaskView, render
from ..errors import WorkflowError
from ..execution.events import (
    AttemptEnded,
    AttemptPlaced,
    AttemptStarted,
    Event,
    OutputLine,
    TaskEnded,
    TaskProgress,
    TaskStarted,
    now,
)
from ..execution.masking import Masker
from ..execution.states import State
from ..tasks.base import TaskContext, TaskResult, TaskType
from ..tasks.custody import RunCustody
from ..tasks.registry import get_task_type
from .executors import Executor

if TYPE_CHECKING:
    from ..definition.model import AnyTask, Defaults, Retry, TaskBase

RETRYABLE = frozenset({State.FAILED, State.TIMED_OUT})


@dataclass
class RunContext:
    """What the task runner may know of its run."""

    execution_id: str
    workflow_name: str
    defaults: Defaults
    scope: Scope  # the run's template scope; children get derived ones
    views: dict[str, TaskView]  # what ``${tasks.ID...}`` sees, updated as tasks end
    emit: Callable[[Event], None]
    started_at: Callable[[str], float | None]  # when a task started, from the run's record
    task: Callable[[str], AnyTask]  # a top-level task by id (an on_success/on_failure callback)
    artifacts_dir: Path
    # The cache key of a top-level task with ``cache:`` (recorded with its end), else None.
    cache_key: Callable[[str], str | None] = lambda _task_id: None
    # Masks the run's secrets (``execution.masking``); task types that read raw output
    # chunks use it to catch a secret written in pieces. None: the run has no secrets.
    masker: Masker | None = None


@dataclass(frozen=True)
class Placement:
    """Where a task runs: under which parent, with which variables, shown under which name."""

    task_id: str
    scope: Scope
    parent: str | None = None
    name: str | None = None


class TaskRunner:
    """Executes tasks for one run; the run decides *when*, this decides *how*."""

    def __init__(
        self,
        run: RunContext,
        *,
        executor: Executor,
        semaphore: asyncio.Semaphore,
        process_env: dict[str, str],
        project_root: Path,
        kill_grace: float,
        workdir: Path,
        custody: RunCustody,
    ):
        self.run_ = run
        self.custody = custody
        self.executor = executor
        self.semaphore = semaphore
        self.process_env = process_env
        self.project_root = project_root
        self.kill_grace = kill_grace
        self.workdir = workdir
        self.defaults = run.defaults
        self.used_types: set[TaskType] = set()  # told when the run ends (TaskType.after_run)
        self.callbacks_run: set[str] = set()  # top-level callbacks that ran (or are running)

    async def run(self, task: AnyTask, place: Placement | None = None) -> None:
        """Run ``task`` to a terminal state, emitting its events; never raises but cancellation."""
        place = place or Placement(task.id or task.type, self.run_.scope)
        result = TaskResult(status=State.CANCELLED, exit_code=None, error="cancelled")
        attempts = 0
        try:
            result, attempts = await self._attempts(task, place)
        finally:
            # Also on cancellation: the record must say how the task ended.
            self._ended(task, place, result, attempts)
        callbacks = task.callbacks(result.status is State.SUCCEEDED)
        if callbacks:
            await self._callbacks(task, place, callbacks, result.status is State.SUCCEEDED)

    def _ended(self, task: AnyTask, place: Placement, result: TaskResult, attempts: int) -> None:
        started_at = self.run_.started_at(place.task_id)
        ended_at = now()
        self.run_.views[place.task_id] = TaskView(
            result=result.result,
            exit_code=result.exit_code,
            status=str(result.status),
            outputs=result.outputs,
            error=result.error,
            duration=None if started_at is None else ended_at - started_at,
            started_at=started_at,
        )
        self.run_.emit(
            TaskEnded(
                execution_id=self.run_.execution_id,
                task_id=place.task_id,
                status=str(result.status),
                started_at=started_at,
                exit_code=result.exit_code,
                result=result.result,
                outputs=result.outputs,
                error=result.error,
                attempts=attempts,
                name=place.name or task.name,
                type=task.type,
                parent=place.parent,
                at=ended_at,
                cache_key=self.run_.cache_key(place.task_id) if place.parent is None else None,
            )
        )

    def skip(self, task: AnyTask, place: Placement, reason: str) -> None:
        """Record ``task`` as skipped without running it (a branch not taken, a stopped loop)."""
        self.run_.views[place.task_id] = TaskView(status=str(State.SKIPPED), error=reason)
        self.run_.emit(
            TaskEnded(
                execution_id=self.run_.execution_id,
                task_id=place.task_id,
                status=str(State.SKIPPED),
                error=reason,
                name=place.name or task.name,
                type=task.type,
                parent=place.parent,
            )
        )

    async def _attempts(self, task: AnyTask, place: Placement) -> tuple[TaskResult, int]:
        retry: Retry | None = task.retry or self.defaults.retry
        total = retry.attempts if retry else 1
        infrastructure_left = task.infrastructure_retries
        if infrastructure_left is None:
            infrastructure_left = self.defaults.infrastructure_retries
        task_type, unusable = _task_type(task.type)
        if task_type is not None:
            self.used_types.add(task_type)
        number = 0  # every attempt, as recorded
        used = 0  # the attempts that count against retry.attempts
        while True:
            number += 1
            async with self.executor.reserve(task), self._slot(task_type):
                attempt_started = now()
                if number == 1:  # started = holding a slot, not waiting for one
                    self._started(task, place, attempt_started)
                result = await self._attempt(task_type, unusable, task, place, number)
            retry_in = None
            if result.infrastructure and infrastructure_left > 0:
                infrastructure_left -= 1  # a lost worker is not the task's failure
                retry_in = 0.0
            else:
                used += 1
                if result.status in RETRYABLE and result.retryable and retry and used < total:
                    retry_in = _jittered(retry.delay_before(used + 1), retry.jitter)
            self.run_.emit(
                AttemptEnded(
                    execution_id=self.run_.execution_id,
                    task_id=place.task_id,
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

    def _started(self, task: AnyTask, place: Placement, at: float) -> None:
        self.run_.emit(
            TaskStarted(
                execution_id=self.run_.execution_id,
                task_id=place.task_id,
                name=place.name or task.name,
                type=task.type,
                parent=place.parent,
                at=at,
            )
        )

    def _slot(self, task_type: TaskType | None) -> Any:
        if task_type is not None and not task_type.uses_slot:
            return contextlib.nullcontext()
        return self.semaphore

    async def _attempt(
        self,
        task_type: TaskType | None,
        unusable: str | None,
        task: AnyTask,
        place: Placement,
        number: int,
    ) -> TaskResult:
        self.run_.emit(
            AttemptStarted(
                execution_id=self.run_.execution_id, task_id=place.task_id, attempt=number
            )
        )
        if task_type is None:
            return TaskResult(status=State.FAILED, exit_code=None, error=unusable, retryable=False)
        timeout = task.timeout if task.timeout is not None else self.defaults.timeout
        try:
            ctx = self._context(task, place, number)
            attempt = _deadline_apart(self.executor.run_attempt(task_type, task, ctx))
            if timeout is None:
                return await attempt
            return await asyncio.wait_for(attempt, timeout)
        except asyncio.TimeoutError:  # only the engine's own deadline: see _deadline_apart
            error = f"timed out after {format_duration(timeout)}"
            return TaskResult(status=State.TIMED_OUT, exit_code=None, error=error)
        except _RaisedTimeout as raised:
            return self._internal_error(task, place, number, raised.error)
        except WorkflowError as exc:  # bad template, missing reference: the user's to fix
            return TaskResult(status=State.FAILED, exit_code=None, error=str(exc), retryable=False)
        except Exception as exc:  # a bug in a task type must fail the task, not the run
            return self._internal_error(task, place, number, exc)

    def _internal_error(
        self, task: AnyTask, place: Placement, number: int, exc: BaseException
    ) -> TaskResult:
        emit_line = self._line_sink(place.task_id, number)
        for line in traceback.format_exception(type(exc), exc, exc.__traceback__):
            for text in line.rstrip("\n").splitlines():
                emit_line("stderr", text)
        return TaskResult.failure(f"internal error in task type '{task.type}': {exc!r}")

    def _line_sink(self, task_id: str, number: int) -> Any:
        execution_id, emit = self.run_.execution_id, self.run_.emit

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

        return emit_line

    def _progress_sink(self, task_id: str, number: int) -> Any:
        execution_id, emit = self.run_.execution_id, self.run_.emit

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

        return emit_progress

    def _placement_sink(self, task_id: str, number: int) -> Any:
        execution_id, emit = self.run_.execution_id, self.run_.emit

        def emit_placement(executor: str, worker: str | None, host: str) -> None:
            emit(
                AttemptPlaced(
                    execution_id=execution_id,
                    task_id=task_id,
                    attempt=number,
                    executor=executor,
                    worker=worker,
                    host=host,
                )
            )

        return emit_placement

    def _context(self, task: TaskBase, place: Placement, number: int) -> TaskContext:
        run = self.run_
        task_id = place.task_id
        output_file = self.workdir / f"{_file_safe(task_id)}.{number}.out"
        env = dict(self.process_env)
        for key, value in task.environment.items():
            env[key] = render(value, place.scope)
        env["WORKFLOW_OUTPUT"] = str(output_file)
        env["WORKFLOW_EXECUTION_ID"] = run.execution_id
        env["WORKFLOW_NAME"] = run.workflow_name
        env["WORKFLOW_TASK_ID"] = task_id
        env["WORKFLOW_ATTEMPT"] = str(number)
        env.update(self.custody.environment())  # after the task's own: not the task's to change
        return TaskContext(
            execution_id=run.execution_id,
            task_id=task_id,
            attempt=number,
            project_root=self.project_root,
            env=env,
            scope=place.scope,
            emit_line=self._line_sink(task_id, number),
            output_file=output_file,
            artifacts_dir=run.artifacts_dir,
            emit_progress=self._progress_sink(task_id, number),
            emit_placement=self._placement_sink(task_id, number),
            kill_grace=self.kill_grace,
            timeout=task.timeout if task.timeout is not None else self.defaults.timeout,
            run_child=lambda child, child_id, **how: self.run_child(child, child_id, place, **how),
            skip_child=lambda child, child_id, reason, **how: self.skip(
                child, _child_place(place, child_id, **how), reason
            ),
            custody=self.custody.attempt(task_id, number),
            masker=run.masker,
        )

    async def run_child(
        self, child: AnyTask, child_id: str, parent: Placement, **how: Any
    ) -> TaskView:
        """Run a composite's child as a task of its own; return what templates see of it."""
        await self.run(child, _child_place(parent, child_id, **how))
        return self.run_.views[child_id]

    async def _callbacks(
        self, task: TaskBase, place: Placement, callbacks: list[Any], succeeded: bool
    ) -> None:
        """Run ``task``'s on_success or on_failure callbacks, one after the other, each once
        per run (a task named by several tasks that end so runs for the first)."""
        for callback in callbacks:
            if isinstance(callback, str):
                if callback in self.callbacks_run:
                    continue
                self.callbacks_run.add(callback)
                await self.run(self.run_.task(callback), replace(place, task_id=callback))
            else:
                key = "on_success" if succeeded else "on_failure"
                callback_id = callback.id or f"{place.task_id}.{key}"
                self.callbacks_run.add(callback_id)
                await self.run(callback, replace(place, task_id=callback_id))


def _child_place(
    parent: Placement,
    child_id: str,
    *,
    variables: dict[str, Any] | None = None,
    name: str | None = None,
) -> Placement:
    scope = parent.scope.child(**variables) if variables else parent.scope
    return Placement(task_id=child_id, scope=scope, parent=parent.task_id, name=name)


def _file_safe(task_id: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in task_id)


def _task_type(name: str) -> tuple[TaskType | None, str | None]:
    """The type's instance, or why there is none (e.g. registered in another process only)."""
    try:
        return get_task_type(name), None
    except WorkflowError as exc:
        return None, str(exc)


class _RaisedTimeout(Exception):
    """A task type raised TimeoutError itself: its own failure, not the engine's deadline."""

    def __init__(self, error: BaseException):
        super().__init__(repr(error))
        self.error = error


async def _deadline_apart(attempt: Any) -> TaskResult:
    """Await ``attempt``, turning a TimeoutError it raises into ``_RaisedTimeout``.

    Since Python 3.11 ``asyncio.TimeoutError`` is the builtin ``TimeoutError``, so without this
    a task type's own timeout (a socket's, a library's) would pass for the task's ``timeout``.
    """
    try:
        result: TaskResult = await attempt
    except (TimeoutError, asyncio.TimeoutError) as exc:
        raise _RaisedTimeout(exc) from exc
    return result


def _jittered(delay: float, jitter: float) -> float:
    if jitter <= 0:
        return delay
    return max(0.0, delay * (1 + random.uniform(-jitter, jitter)))
