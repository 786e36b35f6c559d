"""Crash detection: a run whose journal has no end and whose runner is gone is crashed.

The verdict is written to the journal itself (the source of truth) as the events the runner
would have written, so every reader of the journal, not only the index, sees the same end.
Before that, whatever the run's processes left running is ended: the journal names the run's
tag, process groups and its runner's cgroup, and ``execution.processes`` kills only what is
provably the run's (never a pid that was reused, nor a process of another user than the
journal's).

When the runner died is not recorded by the runner: the end is its last sign of life, the
journal's last write (a running runner touches it every half second, and its guardian touches
it when the runner dies), and the record says it is an estimate (``end_estimated``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ..execution.events import (
    AttemptEnded,
    Event,
    ProcessStarted,
    RunEnded,
    RunStarted,
    TaskEnded,
)
from ..execution.owner import is_alive, started_at
from ..execution.processes import Leader, end_run, valid_tag
from ..execution.records import Execution
from ..execution.states import State
from .journal import JournalWriter, read_events

if TYPE_CHECKING:
    import duckdb


def orphaned_runs(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Ids of unfinished runs whose owner is provably gone (owners on other hosts are not)."""
    rows = con.execute(
        """
        SELECT e.id, e.pid, e.host, e.pid_start
        FROM journals AS j JOIN executions AS e ON e.id = j.execution_id
        WHERE NOT j.complete
        """
    ).fetchall()
    return [eid for eid, pid, host, pid_start in rows if not is_alive(pid, host, pid_start)]


def mark_crashed(path: Path) -> bool:
    """Append the crash ending to a dead runner's journal; False if there is nothing to end.

    Call only once the owner is known dead (nothing else writes the journal then) and under
    the index lock (so two readers cannot both append an ending).
    """
    try:
        stat = path.stat()
    except FileNotFoundError:
        return False  # journal removed by hand: do not recreate it
    events = read_events(path)
    if not events or any(isinstance(e, RunEnded) for e in events):
        return False  # ended after all: it finished between ingest and the owner check
    end_leftovers(events, stat.st_uid)
    # The file name says whose journal it is, as it does for the index.
    record = Execution(id=path.stem, workflow="")
    for event in events:
        record.apply(event)
    with JournalWriter(path) as write:
        for event in crash_events(record, last_sign_of_life(record, events, stat.st_mtime)):
            write(event)
    return True


def last_sign_of_life(record: Execution, events: list[Event], mtime: float) -> float:
    """When the runner was last known alive: its journal's last write or last event.

    A process now holding the runner's pid started after the runner died: a later time is
    impossible (a clock set back, a journal touched by hand).
    """
    at = max(mtime, events[-1].at)
    reused = started_at(record.pid) if record.pid else None
    if reused is not None and events[-1].at <= reused < at:
        at = reused
    return at


def end_leftovers(events: list[Event], uid: int) -> None:
    """End what the dead run's processes left running (processes of user ``uid`` only)."""
    started = next((e for e in events if isinstance(e, RunStarted)), None)
    tag = started.run_tag if started is not None else None
    leaders: list[Leader] = []
    cgroups = {Path(started.cgroup)} if started is not None and started.cgroup else set()
    for event in events:
        if isinstance(event, ProcessStarted):
            leaders.append(Leader(event.pid, event.pid_start))
            if event.cgroup:
                cgroups.add(Path(event.cgroup))
    if valid_tag(tag) or leaders or cgroups:
        end_run(tag, leaders, sorted(cgroups), uid=uid, timeout=2.0)


def crash_events(record: Execution, at: float) -> list[Event]:
    """Events that end every running attempt and task of ``record``, then the run, as crashed."""
    error = f"runner process {record.pid} on {record.host} died before the run ended"
    eid = record.id
    events: list[Event] = []
    for task in record.tasks.values():
        for attempt in task.attempts:
            if attempt.status is State.RUNNING:
                events.append(
                    AttemptEnded(
                        execution_id=eid,
                        at=at,
                        task_id=task.id,
                        attempt=attempt.number,
                        status=State.CRASHED.value,
                        started_at=attempt.started_at or at,
                        error=error,
                    )
                )
        if task.status is State.RUNNING:
            events.append(
                TaskEnded(
                    execution_id=eid,
                    at=at,
                    task_id=task.id,
                    status=State.CRASHED.value,
                    started_at=task.started_at,
                    error=error,
                    attempts=len(task.attempts),
                )
            )
    events.append(
        RunEnded(
            execution_id=eid, at=at, status=State.CRASHED.value, error=error, end_estimated=True
        )
    )
    return events
