"""Plain result types the store's queries return (dataclasses, and TypedDicts where callers
have always had dicts)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any, TypedDict


def to_datetime(epoch: float | None) -> datetime | None:
    """An aware UTC datetime from epoch seconds (None stays None)."""
    return None if epoch is None else datetime.fromtimestamp(epoch, tz=timezone.utc)


def to_epoch(moment: datetime) -> float:
    """Epoch seconds of ``moment``; a naive datetime is taken as local time."""
    return moment.timestamp()


def _iso(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


@dataclass
class ExecutionSummary:
    """One line of history: an execution without its tasks."""

    id: str
    workflow: str
    status: str
    started_at: datetime | None
    ended_at: datetime | None
    duration_ms: float | None
    trigger: str | None
    task_count: int
    failed_tasks: int
    executor: str | None = None  # where its tasks ran: local, dask...; None when unknown
    cancelled_by: str | None = None  # who asked a cancelled run to stop (cli, lab, api...)
    resumed_from: str | None = None  # the execution it resumed
    reused_tasks: int = 0  # tasks not run but reused (resumed or cached)
    params: dict[str, Any] | None = None  # the run's parameters (-p NAME VALUE), if any

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form: datetimes as ISO 8601 strings."""
        return {key: _iso(value) for key, value in asdict(self).items()}


@dataclass
class LogLine:
    """One line of task output, as the runner journaled it."""

    execution_id: str
    task_id: str | None
    attempt: int | None
    seq: int
    at: datetime | None
    stream: str | None
    line: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form: the time as an ISO 8601 string."""
        return {key: _iso(value) for key, value in asdict(self).items()}


@dataclass(frozen=True)
class CacheEntry:
    """A successful run of a task with ``cache:``, recorded under its cache key (the index's
    ``task_runs`` row of that run: entries come from the journals like everything else)."""

    workflow: str
    task_id: str
    key: str
    execution_id: str
    created_at: float  # when the task ended (epoch seconds): what ``expire`` bounds
    result: Any = None
    outputs: dict[str, Any] = field(default_factory=dict)
    exit_code: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ExecutionRow:
    """One execution in a page of the execution list (``execution_page``). Times are epoch
    seconds, as in ``Execution`` records, the form the REST API serves."""

    id: str
    workflow: str
    status: str
    trigger: str | None
    started_at: float | None
    ended_at: float | None
    duration_ms: float | None
    task_count: int | None
    error: str | None
    cancelled_by: str | None = None


@dataclass
class ExecutionPage:
    """A page of executions, newest first, and how many match the filters in all."""

    executions: list[ExecutionRow]
    total: int


@dataclass(frozen=True)
class LatestRun:
    """The newest execution of one workflow; ``started_at`` in epoch seconds (see
    ``ExecutionRow``)."""

    execution_id: str
    status: str
    started_at: float | None


@dataclass(frozen=True)
class DurationMedian:
    """The median duration of some runs, and how many runs it is over (None when none)."""

    runs: int
    median_ms: float | None


class RunMetrics(TypedDict):
    """Run counts and durations over a set of executions (docs/store-schema.md)."""

    runs: int
    succeeded: int
    failed: int
    success_rate: float | None
    avg_ms: float | None
    p50_ms: float | None
    p95_ms: float | None


class WorkflowMetrics(RunMetrics):
    """``RunMetrics`` of one workflow, and its latest run."""

    workflow: str
    last_started_at: datetime | None
    last_status: str | None


class TaskMetrics(TypedDict):
    """Runs, failures, retries and durations of one task of one workflow."""

    workflow: str
    task_id: str
    runs: int
    failures: int
    retries: int
    avg_ms: float | None
    p50_ms: float | None
    p95_ms: float | None
    reused: int  # task_runs not run but reused (resumed or cached): not in runs nor durations
    most_common_failure: str | None


class TaskDuration(TypedDict):
    """How long one task of one execution took."""

    workflow: str
    execution_id: str
    task_id: str
    status: str
    duration_ms: float
