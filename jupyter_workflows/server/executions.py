"""Reading the execution history for the REST API: a page of executions, one execution's detail.

``page`` blocks (DuckDB): the service runs it in a worker thread. ``execution_json`` and its
parts ``run_json`` and ``task_json`` are the JSON shapes of the detail, which the event stream
also sends (``live.py``); they only convert records and run anywhere.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..execution.records import Execution, TaskRecord
from ..execution.states import State
from ..ui.text import ran_elsewhere, ran_on
from .discovery import relative_path
from .notebooks import openable_path

if TYPE_CHECKING:
    from ..store import ExecutionStore
    from ..store.models import ExecutionRow

DEFAULT_LIMIT = 50
MAX_LIMIT = 1000
STATUSES = tuple(state.value for state in State)


class BadParameter(ValueError):
    """A query parameter the client got wrong (HTTP 400); the message names it."""


def int_param(value: str | None, name: str, default: int, low: int, high: int) -> int:
    """``value`` as a whole number in [low, high]; ``default`` when absent."""
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except ValueError:
        raise BadParameter(f"'{name}' must be a whole number, not '{value}'") from None
    if not low <= number <= high:
        raise BadParameter(f"'{name}' must be between {low} and {high}, not {number}")
    return number


def since_param(value: str | None) -> datetime | None:
    """``since`` (7d, 12h, 30m or an ISO date) as a moment."""
    from ..store.frames import resolve_since

    if not value:
        return None
    try:
        return resolve_since(value)
    except ValueError as exc:
        raise BadParameter(str(exc)) from None


@dataclass
class ExecutionQuery:
    """Filters and paging of ``GET executions``."""

    workflow: str | None = None
    status: str | None = None
    since: datetime | None = None
    limit: int = DEFAULT_LIMIT
    offset: int = 0

    @classmethod
    def from_args(cls, arg: Callable[[str], str | None]) -> ExecutionQuery:
        """Read the query from request arguments (``arg(name)``); BadParameter when wrong."""
        status = arg("status") or None
        if status is not None and status not in STATUSES:
            raise BadParameter(f"'status' must be one of {', '.join(STATUSES)}, not '{status}'")
        return cls(
            workflow=arg("workflow") or None,
            status=status,
            since=since_param(arg("since")),
            limit=int_param(arg("limit"), "limit", DEFAULT_LIMIT, 1, MAX_LIMIT),
            offset=int_param(arg("offset"), "offset", 0, 0, 10**9),
        )


def page(store: ExecutionStore, query: ExecutionQuery) -> dict[str, Any]:
    """One page of executions, newest first, with the total matching the filters."""
    found = store.execution_page(
        workflow=query.workflow,
        status=query.status,
        since=query.since,
        limit=query.limit,
        offset=query.offset,
    )
    return {
        "executions": [_row(r) for r in found.executions],
        "total": found.total,
        "limit": query.limit,
        "offset": query.offset,
    }


def _row(r: ExecutionRow) -> dict[str, Any]:
    """The JSON of one listed execution: times in epoch seconds, the duration in seconds."""
    return {
        "id": r.id,
        "workflow": r.workflow,
        "status": r.status,
        "trigger": r.trigger,
        "started_at": r.started_at,
        "ended_at": r.ended_at,
        "duration": None if r.duration_ms is None else r.duration_ms / 1000,
        "task_count": r.task_count,
        "error": r.error,
        "cancelled_by": r.cancelled_by,
    }


def execution_json(execution: Execution, root: Path) -> dict[str, Any]:
    """``Execution.to_dict()`` plus each task's ``log_tail`` and ``where``, the executed
    notebooks, and paths relative to the server root when they lie inside it: ``run_json`` with
    ``tasks``."""
    data = run_json(execution, root)
    data["tasks"] = [task_json(record) for record in execution.tasks.values()]
    return data


def run_json(execution: Execution, root: Path) -> dict[str, Any]:
    """The run's own fields of ``execution_json``: everything but ``tasks`` (``executor``,
    ``cluster`` and ``dashboard`` say where its tasks run)."""
    data = replace(execution, tasks={}).to_dict()  # a shallow copy: no task dicts to drop
    del data["tasks"]
    data["file"] = relative_path(root, data["file"])
    notebooks = []
    for record in execution.tasks.values():
        output = record.result.get("output") if isinstance(record.result, dict) else None
        if record.type == "notebook" and isinstance(output, str):
            # ``path`` is the one a click opens (a visible copy of a notebook kept in the
            # hidden store); ``source`` the executed file itself.
            opens = openable_path(execution.workflow, execution.id, record.id, Path(output), root)
            notebooks.append(
                {"task_id": record.id, "path": opens.as_posix(),
                 "source": relative_path(root, output)}
            )  # fmt: skip
    data["output_notebooks"] = notebooks
    return data


def task_json(record: TaskRecord) -> dict[str, Any]:
    """One task of ``execution_json``: ``TaskRecord.to_dict()`` (each attempt with its
    ``executor``, ``worker`` and ``host``) plus its ``log_tail``, and ``where``: the worker (or
    machine) its last attempt ran on when that was a cluster or not the server's machine, else
    None (the panel shows it only then)."""
    data = record.to_dict()
    data["log_tail"] = list(record.log_tail)
    data["where"] = ran_on(record) if ran_elsewhere(record) else None
    return data


def log_lines(lines: list[Any]) -> list[dict[str, Any]]:
    """Store log lines as ``{"stream", "text", "at", "attempt"}`` (``at`` in epoch seconds)."""
    return [
        {
            "stream": line.stream,
            "text": line.line,
            "at": None if line.at is None else line.at.timestamp(),
            "attempt": line.attempt,
        }
        for line in lines
    ]
