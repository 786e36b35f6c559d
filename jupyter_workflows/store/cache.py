"""Cache entries: the successful runs of tasks with ``cache:``, and the clears that hide them.

An entry is not written anywhere of its own: it is the ``task_runs`` row of a task that ran
(not reused) and succeeded with a ``cache_key``, which the index takes from the task's
``task_ended`` journal line like every other column. So an entry exists as soon as its run's
journal does, whether or not the index could be written at the time.

``workflow cache clear`` appends a *clear* (workflow or any, task or any, a time) to
``cache-clears.jsonl`` beside the journals: it hides every matching entry that ended before
it. Like the journals it is a source the index never replaces, so neither a re-ingest of old
journals nor a rebuilt ``index.duckdb`` brings a cleared entry back.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import StoreWriteFailed
from .models import CacheEntry

if TYPE_CHECKING:
    import duckdb

CLEARS_FILE = "cache-clears.jsonl"


@dataclass(frozen=True)
class Clear:
    """Entries of ``workflow`` (None: any) and ``task_id`` (None: any) ended by ``at`` are
    gone."""

    at: float
    workflow: str | None = None
    task_id: str | None = None

    def covers(self, entry: CacheEntry) -> bool:
        return (
            entry.created_at <= self.at
            and self.workflow in (None, entry.workflow)
            and self.task_id in (None, entry.task_id)
        )


def read_clears(path: Path) -> list[Clear]:
    """Every clear recorded in ``path``; a line cut short (a writer mid-write) is skipped."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    clears = []
    for line in text.splitlines():
        try:
            data = json.loads(line)
            clears.append(Clear(float(data["at"]), data.get("workflow"), data.get("task_id")))
        except (ValueError, KeyError, TypeError):
            continue
    return clears


def append_clear(path: Path, clear: Clear) -> None:
    """Record ``clear`` durably: one ``O_APPEND`` write, then fsync."""
    line = (json.dumps(asdict(clear)) + "\n").encode()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as exc:
        raise StoreWriteFailed(path, exc) from exc


def cache_entries(
    con: duckdb.DuckDBPyConnection,
    clears: list[Clear],
    workflow: str | None = None,
    task_ids: list[str] | None = None,
) -> list[CacheEntry]:
    """The newest entry per (workflow, task, key) not cleared, newest first."""
    where = ["t.cache_key IS NOT NULL", "t.status = 'succeeded'", "t.reused IS NULL",
             "t.parent IS NULL"]  # fmt: skip
    params: list[Any] = []
    if workflow is not None:
        where.append("e.workflow = ?")
        params.append(workflow)
    if task_ids is not None:
        where.append("t.task_id IN (SELECT unnest(?::VARCHAR[]))")
        params.append(list(task_ids))
    rows = con.execute(
        f"""
        SELECT e.workflow, t.task_id, t.cache_key, t.execution_id, epoch(t.ended_at),
               t.result, t.outputs, t.exit_code
        FROM task_runs AS t JOIN executions AS e ON e.id = t.execution_id
        WHERE {" AND ".join(where)}
        QUALIFY row_number() OVER (
            PARTITION BY e.workflow, t.task_id, t.cache_key ORDER BY t.ended_at DESC) = 1
        ORDER BY t.ended_at DESC, e.workflow, t.task_id
        """,
        params,
    ).fetchall()
    entries = [
        CacheEntry(
            workflow=r[0],
            task_id=r[1],
            key=r[2],
            execution_id=r[3],
            created_at=float(r[4] or 0.0),
            result=None if r[5] is None else json.loads(r[5]),
            outputs=_dict(r[6]),
            exit_code=r[7],
        )
        for r in rows
    ]
    return [e for e in entries if not any(c.covers(e) for c in clears)]


def _dict(text: str | None) -> dict[str, Any]:
    value = None if text is None else json.loads(text)
    return dict(value) if isinstance(value, dict) else {}
