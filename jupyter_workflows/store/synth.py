"""Events that replay an ``Execution`` record: how ``save_execution`` writes a journal."""

from __future__ import annotations

from ..execution.events import (
    AttemptEnded,
    AttemptPlaced,
    AttemptStarted,
    Event,
    OutputLine,
    RunEnded,
    RunStarted,
    TaskEnded,
    TaskStarted,
    now,
)
from ..execution.records import Execution, TaskRecord
from ..execution.states import State


def execution_events(execution: Execution) -> list[Event]:
    """RunStarted, then each task's start, attempts (and where they ran), output and end, then
    RunEnded.

    Only what the record says happened is emitted: a pending task is only declared, a running
    one gets no TaskEnded, a running execution no RunEnded. ``log_tail`` lines become stdout
    output of the task's last attempt, so they come back from ``get_execution(logs=...)``.
    """
    eid = execution.id
    start = execution.started_at if execution.started_at is not None else now()
    events: list[Event] = [
        RunStarted(
            execution_id=eid,
            at=start,
            workflow=execution.workflow,
            version=execution.version,
            file=execution.file,
            project_root=execution.project_root,
            trigger=execution.trigger,
            pid=execution.pid or 0,
            host=execution.host or "",
            executor=execution.executor or "local",
            cluster=execution.cluster,
            dashboard=execution.dashboard,
            resumed_from=execution.resumed_from,
            params=execution.params,
            tasks=[
                {
                    "id": t.id,
                    "name": t.name,
                    "type": t.type,
                    "parent": t.parent,
                    "depends_on": list(t.depends_on),
                    "hash": t.definition_hash,
                }
                for t in execution.tasks.values()
            ],
        )
    ]
    for task in execution.tasks.values():
        events.extend(_task_events(eid, task, start))
    if State(execution.status).is_terminal:
        end = execution.ended_at if execution.ended_at is not None else start
        events.append(
            RunEnded(
                execution_id=eid,
                at=end,
                status=State(execution.status).value,
                error=execution.error,
                end_estimated=execution.end_estimated,
                cancelled_by=execution.cancelled_by,
            )
        )
    return events


def _task_events(eid: str, task: TaskRecord, run_start: float) -> list[Event]:
    """The events of one task, in the order a runner would have written them."""
    events: list[Event] = []
    start = task.started_at if task.started_at is not None else run_start
    if task.started_at is not None:
        events.append(
            TaskStarted(
                execution_id=eid,
                at=start,
                task_id=task.id,
                name=task.name,
                type=task.type,
                parent=task.parent,
            )
        )
    for attempt in task.attempts:
        a_start = attempt.started_at if attempt.started_at is not None else start
        events.append(
            AttemptStarted(execution_id=eid, at=a_start, task_id=task.id, attempt=attempt.number)
        )
        if attempt.executor is not None:
            events.append(
                AttemptPlaced(
                    execution_id=eid,
                    at=a_start,
                    task_id=task.id,
                    attempt=attempt.number,
                    executor=attempt.executor,
                    worker=attempt.worker,
                    host=attempt.host or "",
                )
            )
        if State(attempt.status).is_terminal:
            events.append(
                AttemptEnded(
                    execution_id=eid,
                    at=attempt.ended_at if attempt.ended_at is not None else a_start,
                    task_id=task.id,
                    attempt=attempt.number,
                    status=State(attempt.status).value,
                    started_at=a_start,
                    exit_code=attempt.exit_code,
                    error=attempt.error,
                )
            )
    end = task.ended_at if task.ended_at is not None else start
    last_attempt = task.attempts[-1].number if task.attempts else 1
    events.extend(
        OutputLine(
            execution_id=eid,
            at=end,
            task_id=task.id,
            attempt=last_attempt,
            stream="stdout",
            line=line,
        )
        for line in task.log_tail
    )
    if State(task.status).is_terminal:
        events.append(
            TaskEnded(
                execution_id=eid,
                at=end,
                task_id=task.id,
                status=State(task.status).value,
                started_at=task.started_at,
                exit_code=task.exit_code,
                result=task.result,
                outputs=dict(task.outputs),
                error=task.error,
                attempts=len(task.attempts),
                name=task.name,
                type=task.type,
                parent=task.parent,
                reused=task.reused,
                reused_from=task.reused_from,
                cache_key=task.cache_key,
            )
        )
    return events
