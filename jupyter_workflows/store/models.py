"""Plain result types the store's queries return."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from typing import Any


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
