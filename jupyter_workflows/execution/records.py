"""What a run looked like: executions, tasks and attempts, folded from events.

The engine keeps one ``Execution`` up to date as it emits events; the store rebuilds the same
objects from its tables. Both sides use ``Execution.apply`` so they cannot disagree.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..errors import TaskFailure, WorkflowFailed
from .events import (
    AttemptEnded,
    AttemptPlaced,
    AttemptStarted,
    Event,
    OutputLine,
    RunEnded,
    RunStarted,
    TaskEnded,
    TaskProgress,
    TaskStarted,
)
from .states import State


@dataclass
class Attempt:
    number: int
    status: State = State.RUNNING
    started_at: float | None = None
    ended_at: float | None = None
    exit_code: int | None = None
    error: str | None = None
    executor: str | None = None  # where it ran: the executor, the worker and the machine
    worker: str | None = None
    host: str | None = None

    @property
    def duration(self) -> float | None:
        if self.started_at is None or self.ended_at is None:
            return None
        return self.ended_at - self.started_at

    def to_dict(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "status": str(self.status),
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "duration": self.duration,
            "exit_code": self.exit_code,
            "error": self.error,
            "executor": self.executor,
            "worker": self.worker,
            "host": self.host,
        }


@dataclass
class TaskRecord:
    id: str
    name: str | None = None
    type: str = "shell"
    parent: str | None = None
    depends_on: list[str] = field(default_factory=list)
    status: State = State.PENDING
    started_at: float | None = None
    ended_at: float | None = None
    exit_code: int | None = None
    result: Any = None
    outputs: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    attempts: list[Attempt] = field(default_factory=list)
    # Last lines of output, kept by the engine for messages; the store keeps every line.
    log_tail: list[str] = field(default_factory=list)
    # The latest step reported (a notebook cell): {"step", "total", "label", "status"}.
    progress: dict[str, Any] | None = None
    # Not run in this execution but reused: "resumed" or "cached", from ``reused_from``.
    reused: str | None = None
    reused_from: str | None = None
    definition_hash: str | None = None  # what a resume compares (see engine/fingerprint.py)
    cache_key: str | None = None

    @property
    def duration(self) -> float | None:
        if self.started_at is None or self.ended_at is None:
            return None
        return self.ended_at - self.started_at

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "type": self.type,
            "parent": self.parent,
            "depends_on": list(self.depends_on),
            "status": str(self.status),
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "duration": self.duration,
            "exit_code": self.exit_code,
            "result": self.result,
            "outputs": self.outputs,
            "error": self.error,
            "attempts": [a.to_dict() for a in self.attempts],
            "progress": self.progress,
            "reused": self.reused,
            "reused_from": self.reused_from,
            "definition_hash": self.definition_hash,
            "cache_key": self.cache_key,
        }


LOG_TAIL_LINES = 20


@dataclass
class Execution:
    id: str
    workflow: str
    status: State = State.PENDING
    version: str | None = None
    file: str | None = None
    project_root: str | None = None
    trigger: str = "manual"
    started_at: float | None = None
    ended_at: float | None = None
    error: str | None = None
    pid: int | None = None
    host: str | None = None
    # Where its attempts ran: "local" (as RunStarted says by default), or "dask" with the
    # scheduler's address and dashboard; None when an older index row does not say.
    executor: str | None = "local"
    cluster: str | None = None
    dashboard: str | None = None
    tasks: dict[str, TaskRecord] = field(default_factory=dict)
    # The runner died and a reader recorded the end: ``ended_at`` is the runner's last sign of
    # life (an estimate), and so are the durations that end there.
    end_estimated: bool = False
    # Who asked a cancelled run to stop ("cli", "lab", "api", "widget"...); None when it was
    # stopped where it ran (Ctrl-C, a kernel interrupt) or not cancelled at all.
    cancelled_by: str | None = None
    resumed_from: str | None = None  # the execution this one resumed
    params: dict[str, Any] | None = None  # the run's parameters, if it was given any

    @property
    def duration(self) -> float | None:
        if self.started_at is None or self.ended_at is None:
            return None
        return self.ended_at - self.started_at

    @property
    def succeeded(self) -> bool:
        return self.status is State.SUCCEEDED

    def task(self, task_id: str) -> TaskRecord:
        return self.tasks[task_id]

    def raise_for_status(self) -> Execution:
        """This execution when it succeeded; else ``WorkflowFailed`` naming the tasks that
        ended badly (failed, timed out, cancelled, crashed) and their errors."""
        if self.status is State.SUCCEEDED:
            return self
        failures = [
            TaskFailure(task.id, str(task.status), task.error)
            for task in self.tasks.values()
            if task.status.is_failure
        ]
        raise WorkflowFailed(
            self, failures, workflow=self.workflow, status=str(self.status), error=self.error
        )

    def _task(self, task_id: str) -> TaskRecord:
        record = self.tasks.get(task_id)
        if record is None:
            record = self.tasks[task_id] = TaskRecord(id=task_id)
        return record

    def apply(self, event: Event) -> None:
        """Fold one event into this record."""
        if isinstance(event, OutputLine):
            tail = self._task(event.task_id).log_tail
            tail.append(event.line)
            if len(tail) > LOG_TAIL_LINES:
                del tail[0]
        elif isinstance(event, TaskProgress):
            self._task(event.task_id).progress = {
                "step": event.step,
                "total": event.total,
                "label": event.label,
                "status": event.status,
            }
        elif isinstance(event, AttemptStarted):
            task = self._task(event.task_id)
            task.attempts.append(Attempt(number=event.attempt, started_at=event.at))
        elif isinstance(event, AttemptPlaced):
            task = self._task(event.task_id)
            for placed in task.attempts:
                if placed.number == event.attempt:
                    placed.executor, placed.worker, placed.host = (
                        event.executor,
                        event.worker,
                        event.host,
                    )
        elif isinstance(event, AttemptEnded):
            task = self._task(event.task_id)
            attempt = next((a for a in task.attempts if a.number == event.attempt), None)
            if attempt is None:
                attempt = Attempt(number=event.attempt, started_at=event.started_at)
                task.attempts.append(attempt)
            attempt.status = State(event.status)
            attempt.ended_at = event.at
            attempt.exit_code = event.exit_code
            attempt.error = event.error
        elif isinstance(event, TaskStarted):
            task = self._task(event.task_id)
            task.status = State.RUNNING
            task.started_at = event.at
            task.name = event.name or task.name
            task.type = event.type
            task.parent = event.parent
        elif isinstance(event, TaskEnded):
            task = self._task(event.task_id)
            task.status = State(event.status)
            task.started_at = event.started_at if event.started_at is not None else task.started_at
            task.ended_at = event.at
            task.exit_code = event.exit_code
            task.result = event.result
            task.outputs = dict(event.outputs or {})
            task.error = event.error
            task.name = event.name or task.name
            task.type = event.type or task.type
            task.parent = event.parent if event.parent is not None else task.parent
            task.reused, task.reused_from = event.reused, event.reused_from
            task.cache_key = event.cache_key or task.cache_key
        elif isinstance(event, RunStarted):
            self.status = State.RUNNING
            self.workflow = event.workflow
            self.version = event.version
            self.file = event.file
            self.project_root = event.project_root
            self.trigger = event.trigger
            self.started_at = event.at
            self.pid = event.pid
            self.host = event.host
            self.executor, self.cluster, self.dashboard = (
                event.executor,
                event.cluster,
                event.dashboard,
            )
            self.resumed_from = event.resumed_from
            self.params = event.params
            for spec in event.tasks:
                task = self._task(spec["id"])
                task.name = spec.get("name")
                task.type = spec.get("type", task.type)
                task.parent = spec.get("parent")
                task.depends_on = list(spec.get("depends_on") or [])
                task.definition_hash = spec.get("hash")
        elif isinstance(event, RunEnded):
            self.status = State(event.status)
            self.ended_at = event.at
            self.error = event.error
            self.end_estimated = event.end_estimated
            self.cancelled_by = event.cancelled_by

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "workflow": self.workflow,
            "version": self.version,
            "status": str(self.status),
            "file": self.file,
            "project_root": self.project_root,
            "trigger": self.trigger,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "duration": self.duration,
            "end_estimated": self.end_estimated,
            "error": self.error,
            "cancelled_by": self.cancelled_by,
            "executor": self.executor,
            "cluster": self.cluster,
            "dashboard": self.dashboard,
            "resumed_from": self.resumed_from,
            "params": self.params,
            "tasks": [t.to_dict() for t in self.tasks.values()],
        }
