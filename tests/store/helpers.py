"""Journals for store tests, written from real events with chosen times."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from jupyter_workflows.execution.events import (
    AttemptEnded,
    AttemptPlaced,
    AttemptStarted,
    Event,
    OutputLine,
    RunEnded,
    RunStarted,
    TaskEnded,
    TaskStarted,
)
from jupyter_workflows.store import ExecutionStore

T0 = 1_700_000_000.0  # 2023-11-14T22:13:20Z; multiples of 1/8 s survive the µs round trip


@dataclass
class TaskPlan:
    """One task of a synthetic run: how its attempts went and what it printed."""

    id: str
    status: str = "succeeded"
    duration: float = 1.0  # seconds, spread evenly over the attempts
    attempts: int = 1
    lines: list[str] = field(default_factory=list)
    exit_code: int | None = 0
    result: object = None
    # Where each attempt ran, (executor, worker, host) in attempt order; none: not placed.
    placed: list[tuple[str, str | None, str]] = field(default_factory=list)


def run_events(
    execution_id: str,
    *,
    workflow: str = "etl",
    start: float = T0,
    tasks: Iterable[TaskPlan] = (),
    status: str | None = "succeeded",
    trigger: str = "manual",
    pid: int = 0,
    host: str = "",
    pid_start: str | None = None,
    executor: str = "local",
    cluster: str | None = None,
    dashboard: str | None = None,
) -> list[Event]:
    """Events of a run whose tasks run one after the other; ``status=None`` leaves it open."""
    plans = list(tasks)
    eid = execution_id
    events: list[Event] = [
        RunStarted(
            execution_id=eid,
            at=start,
            workflow=workflow,
            trigger=trigger,
            pid=pid,
            host=host,
            pid_start=pid_start,
            executor=executor,
            cluster=cluster,
            dashboard=dashboard,
            tasks=[{"id": p.id, "depends_on": []} for p in plans],
        )
    ]
    clock = start
    for plan in plans:
        events.append(TaskStarted(execution_id=eid, at=clock, task_id=plan.id, name=plan.id))
        task_start, step = clock, plan.duration / plan.attempts
        for number in range(1, plan.attempts + 1):
            events.append(
                AttemptStarted(execution_id=eid, at=clock, task_id=plan.id, attempt=number)
            )
            if number <= len(plan.placed):
                where, worker, host = plan.placed[number - 1]
                events.append(
                    AttemptPlaced(
                        execution_id=eid,
                        at=clock,
                        task_id=plan.id,
                        attempt=number,
                        executor=where,
                        worker=worker,
                        host=host,
                    )
                )
            events.extend(
                OutputLine(
                    execution_id=eid,
                    at=clock,
                    task_id=plan.id,
                    attempt=number,
                    stream="stdout",
                    line=line,
                )
                for line in plan.lines
            )
            last = number == plan.attempts
            attempt_status = plan.status if last else "failed"
            events.append(
                AttemptEnded(
                    execution_id=eid,
                    at=clock + step,
                    task_id=plan.id,
                    attempt=number,
                    status=attempt_status,
                    started_at=clock,
                    exit_code=plan.exit_code if last else 1,
                    retry_in=None if last else 0.0,
                )
            )
            clock += step
        events.append(
            TaskEnded(
                execution_id=eid,
                at=clock,
                task_id=plan.id,
                status=plan.status,
                started_at=task_start,
                exit_code=plan.exit_code,
                result=plan.result,
                attempts=plan.attempts,
            )
        )
    if status is not None:
        events.append(RunEnded(execution_id=eid, at=clock, status=status))
    return events


def write_events(store: ExecutionStore, events: Iterable[Event], execution_id: str) -> Path:
    """Append ``events`` to the journal of ``execution_id`` through a JournalWriter."""
    with store.open_journal(execution_id) as write:
        for event in events:
            write(event)
    return store.journal_path(execution_id)


def write_run(store: ExecutionStore, execution_id: str, **kwargs: object) -> Path:
    """Journal a whole synthetic run (see ``run_events``)."""
    return write_events(store, run_events(execution_id, **kwargs), execution_id)  # type: ignore[arg-type]
