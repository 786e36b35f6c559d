"""Read queries over the index: history, the execution list, logs; metrics are in ``metrics``.

Times leave DuckDB as epoch seconds (``epoch(...)``) and become aware UTC datetimes here, so
results do not depend on the session time zone.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ..execution.states import FAILURES
from .models import (
    ExecutionPage,
    ExecutionRow,
    ExecutionSummary,
    LatestRun,
    LogLine,
    to_datetime,
    to_epoch,
)

if TYPE_CHECKING:
    import duckdb

FAILED = "(" + ", ".join(f"'{s.value}'" for s in sorted(FAILURES)) + ")"
UNFINISHED = "('pending', 'running')"


def filters(
    workflow: str | None,
    status: str | None,
    since: datetime | None,
    prefix: str = "",
    *,
    also: Iterable[str] = (),
) -> tuple[str, list[Any]]:
    """A WHERE clause (possibly empty) and its parameters for the common filters of
    executions (``prefix``: the table's alias and a dot), after the conditions ``also``."""
    clauses: list[str] = list(also)
    params: list[Any] = []
    if workflow is not None:
        clauses.append(f"{prefix}workflow = ?")
        params.append(workflow)
    if status is not None:
        clauses.append(f"{prefix}status = ?")
        params.append(status)
    if since is not None:
        clauses.append(f"{prefix}started_at >= to_timestamp(?)")
        params.append(to_epoch(since))
    return ("WHERE " + " AND ".join(clauses) if clauses else ""), params


def history(
    con: duckdb.DuckDBPyConnection,
    limit: int | None,
    workflow: str | None,
    status: str | None,
    since: datetime | None,
) -> list[ExecutionSummary]:
    """Executions newest first, with how many of their tasks failed."""
    where, params = filters(workflow, status, since)
    limit_sql = ""
    if limit is not None:
        limit_sql = "LIMIT ?"
        params.append(max(int(limit), 0))
    rows = con.execute(
        f"""
        WITH top AS (
            SELECT id, workflow, status, started_at, ended_at, duration_ms, "trigger", task_count,
                   executor, cancelled_by, resumed_from, params
            FROM executions {where}
            ORDER BY started_at DESC NULLS LAST, id DESC {limit_sql}
        ), failed AS (
            SELECT execution_id, count(*) FILTER (WHERE status IN {FAILED}) AS n,
                   count(*) FILTER (WHERE reused IS NOT NULL) AS reused
            FROM task_runs
            WHERE execution_id IN (SELECT id FROM top)
            GROUP BY execution_id
        )
        SELECT id, workflow, status, epoch(started_at), epoch(ended_at), duration_ms,
               "trigger", task_count, coalesce(failed.n, 0), executor, cancelled_by,
               resumed_from, coalesce(failed.reused, 0), params
        FROM top LEFT JOIN failed ON failed.execution_id = top.id
        ORDER BY started_at DESC NULLS LAST, id DESC
        """,
        params,
    ).fetchall()
    return [
        ExecutionSummary(
            id=r[0],
            workflow=r[1],
            status=r[2],
            started_at=to_datetime(r[3]),
            ended_at=to_datetime(r[4]),
            duration_ms=r[5],
            trigger=r[6],
            task_count=int(r[7] or 0),
            failed_tasks=int(r[8]),
            executor=r[9],
            cancelled_by=r[10],
            resumed_from=r[11],
            reused_tasks=int(r[12]),
            params=json.loads(r[13]) if r[13] is not None else None,
        )
        for r in rows
    ]


def logs(
    con: duckdb.DuckDBPyConnection, execution_id: str, task_id: str | None, tail: int | None
) -> list[LogLine]:
    """Output lines of one execution (or one of its tasks) in journal order; ``tail``: last N."""
    where = "WHERE execution_id = ?" + (" AND task_id = ?" if task_id is not None else "")
    params: list[Any] = [execution_id] + ([task_id] if task_id is not None else [])
    # Newest first so LIMIT keeps the tail; reversed below.
    limit_sql = ""
    if tail is not None:
        limit_sql = "LIMIT ?"
        params.append(max(int(tail), 0))
    rows = con.execute(
        f"""
        SELECT execution_id, task_id, attempt, seq, epoch("at"), stream, line
        FROM logs {where} ORDER BY seq DESC {limit_sql}
        """,
        params,
    ).fetchall()
    return [
        LogLine(
            execution_id=r[0],
            task_id=r[1],
            attempt=r[2],
            seq=r[3],
            at=to_datetime(r[4]),
            stream=r[5],
            line=r[6] or "",
        )
        for r in reversed(rows)
    ]


def execution_page(
    con: duckdb.DuckDBPyConnection,
    workflow: str | None,
    status: str | None,
    since: datetime | None,
    limit: int,
    offset: int,
) -> ExecutionPage:
    """``limit`` executions from ``offset`` on, newest first, with the total matching."""
    where, params = filters(workflow, status, since)
    rows = con.execute(
        f"""
        SELECT id, workflow, status, "trigger", epoch(started_at), epoch(ended_at), duration_ms,
               task_count, error, cancelled_by, count(*) OVER () AS total
        FROM executions {where}
        ORDER BY started_at DESC NULLS LAST, id DESC
        LIMIT ? OFFSET ?
        """,
        [*params, limit, offset],
    ).fetchall()
    if rows:
        total = int(rows[0][-1])
    elif offset:  # past the end: the window count has no row to ride on
        total = count_executions(con, workflow, status, since)
    else:
        total = 0
    executions = [
        ExecutionRow(
            id=r[0],
            workflow=r[1],
            status=r[2],
            trigger=r[3],
            started_at=r[4],
            ended_at=r[5],
            duration_ms=r[6],
            task_count=r[7],
            error=r[8],
            cancelled_by=r[9],
        )
        for r in rows
    ]
    return ExecutionPage(executions, total)


def count_executions(
    con: duckdb.DuckDBPyConnection,
    workflow: str | None,
    status: str | None,
    since: datetime | None,
) -> int:
    """How many executions match the filters."""
    where, params = filters(workflow, status, since)
    row = con.execute(f"SELECT count(*) FROM executions {where}", params).fetchone()
    return int(row[0]) if row else 0


def latest_runs(con: duckdb.DuckDBPyConnection) -> dict[str, LatestRun]:
    """Each recorded workflow's newest execution, by workflow name."""
    rows = con.execute(
        """
        SELECT workflow, arg_max(id, started_at), arg_max(status, started_at),
               epoch(max(started_at))
        FROM executions GROUP BY workflow
        """
    ).fetchall()
    return {r[0]: LatestRun(r[1], r[2], r[3]) for r in rows}
