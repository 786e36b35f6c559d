"""Typed events: the one stream a run produces.

The engine emits them; the journal, the DuckDB index, the console renderer, the notebook
widget, the alert rules and the lab panel consume them. Keeping them at the bottom floor means
no consumer imports the engine.

Each event flattens to one JSON object per journal line (``to_dict``). Field names are shared
across kinds on purpose (``task_id``, ``status``, ``exit_code``, ...) so the store can read a
journal as one table.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, Protocol


def now() -> float:
    """Wall-clock time as epoch seconds; events carry this, the store converts it."""
    return time.time()


@dataclass(slots=True, kw_only=True)
class Event:
    kind: ClassVar[str] = "event"
    execution_id: str
    at: float = field(default_factory=now)

    def to_dict(self) -> dict[str, Any]:
        data = {name: getattr(self, name) for name in self.__dataclass_fields__}
        data["kind"] = self.kind
        return data


@dataclass(slots=True, kw_only=True)
class RunStarted(Event):
    kind: ClassVar[str] = "run_started"
    workflow: str
    version: str | None = None
    file: str | None = None
    project_root: str | None = None
    trigger: str = "manual"
    pid: int = 0
    host: str = ""
    # Start time of the runner process (from /proc) so a reused pid is not taken for the owner.
    pid_start: str | None = None
    # [{id, name, type, depends_on, parent, hash}] so consumers can draw the DAG before tasks
    # start; ``hash`` is the task's definition hash (what a resume compares).
    tasks: list[dict[str, Any]] = field(default_factory=list)
    # Where attempts run: "local", or "dask" with the scheduler's address and dashboard.
    executor: str = "local"
    cluster: str | None = None
    dashboard: str | None = None
    # WORKFLOW_RUN_TAG of the run's processes: how a reader finds what a crashed run left.
    run_tag: str | None = None
    # The runner's own cgroup v2 folder, if it made one: known before any task starts, so a
    # kill between a task's fork and its process_started line still leaves it findable.
    cgroup: str | None = None
    # The execution this one resumes (``workflow run --resume``): its tasks may be reused.
    resumed_from: str | None = None
    # The run's parameters (``-p NAME VALUE``, ``${params.NAME}``), masked like every event:
    # what a resume of this run runs with again.
    params: dict[str, Any] | None = None


@dataclass(slots=True, kw_only=True)
class TaskStarted(Event):
    kind: ClassVar[str] = "task_started"
    task_id: str
    name: str | None = None
    type: str = "shell"
    parent: str | None = None


@dataclass(slots=True, kw_only=True)
class AttemptStarted(Event):
    kind: ClassVar[str] = "attempt_started"
    task_id: str
    attempt: int


@dataclass(slots=True, kw_only=True)
class AttemptPlaced(Event):
    """Where an attempt runs, told by the executor once the attempt has started there."""

    kind: ClassVar[str] = "attempt_placed"
    task_id: str
    attempt: int
    executor: str  # "local", "dask", or a plugin's name
    worker: str | None = None  # the worker's address on a cluster
    host: str = ""  # the machine the attempt's processes run on


@dataclass(slots=True, kw_only=True)
class ProcessStarted(Event):
    """A process group started working for an attempt (its leader: pid and start time), so
    that what a crashed run left running can be found and ended, and nothing else."""

    kind: ClassVar[str] = "process_started"
    task_id: str | None = None
    attempt: int | None = None
    pid: int
    pid_start: str | None = None
    cgroup: str | None = None  # the run's cgroup v2 folder, where one could be made


@dataclass(slots=True, kw_only=True)
class OutputLine(Event):
    kind: ClassVar[str] = "output"
    task_id: str
    attempt: int
    stream: str  # "stdout" or "stderr"
    line: str


@dataclass(slots=True, kw_only=True)
class TaskProgress(Event):
    """How far an attempt has got, for task types with steps (a notebook's cells)."""

    kind: ClassVar[str] = "task_progress"
    task_id: str
    attempt: int
    step: int  # 1-based index of the step this event is about
    total: int | None = None
    label: str | None = None  # e.g. "cell 3/12: load data"
    status: str = "running"  # running, succeeded or failed (that step)


@dataclass(slots=True, kw_only=True)
class AttemptEnded(Event):
    kind: ClassVar[str] = "attempt_ended"
    task_id: str
    attempt: int
    status: str
    started_at: float
    exit_code: int | None = None
    error: str | None = None
    # Seconds until the next attempt starts, or None when this was the last one.
    retry_in: float | None = None


@dataclass(slots=True, kw_only=True)
class TaskEnded(Event):
    kind: ClassVar[str] = "task_ended"
    task_id: str
    status: str
    started_at: float | None = None
    exit_code: int | None = None
    result: Any = None
    outputs: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    attempts: int = 0
    name: str | None = None
    type: str | None = None
    parent: str | None = None
    # Not run here: "resumed" (taken from the execution resumed) or "cached" (a cache hit);
    # ``reused_from`` is the execution whose result, outputs and artifacts were reused.
    # Either way ``status`` is "succeeded", so conditions and dependents see a success.
    reused: str | None = None
    reused_from: str | None = None
    # A task with ``cache:``: the key its result is recorded (or was found) under.
    cache_key: str | None = None


@dataclass(slots=True, kw_only=True)
class RunEnded(Event):
    kind: ClassVar[str] = "run_ended"
    status: str
    error: str | None = None
    # True when a reader wrote this end for a runner that died: ``at`` is then the last sign of
    # life the runner left (its journal's last write), not a time it recorded itself.
    end_estimated: bool = False
    # Who asked for a cancelled run to stop, when the request came through the store
    # (``workflow cancel``: "cli", the lab panel: "lab", the Python API: "api", ...).
    cancelled_by: str | None = None


EVENT_TYPES: dict[str, type[Event]] = {
    cls.kind: cls
    for cls in (
        RunStarted,
        TaskStarted,
        AttemptStarted,
        AttemptPlaced,
        ProcessStarted,
        OutputLine,
        TaskProgress,
        AttemptEnded,
        TaskEnded,
        RunEnded,
    )
}


def event_from_dict(data: dict[str, Any]) -> Event:
    """Rebuild an event from its journal form (unknown keys, such as ``seq``, are ignored)."""
    cls = EVENT_TYPES[data["kind"]]
    names = {f.name for f in fields(cls)}  # init fields only: `kind` is a ClassVar
    return cls(**{k: v for k, v in data.items() if k in names})


class EventSink(Protocol):
    """Anything that receives events. Called synchronously on the engine's loop: keep it cheap."""

    def __call__(self, event: Event) -> None: ...
