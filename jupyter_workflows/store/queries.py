"""Read queries over the index: history, logs and metrics.

Times leave DuckDB as epoch seconds (``epoch(...)``) and become aware UTC datetimes here, so
results do not depend on the session time zone.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from ..execution.states import FAILURES
from .models import ExecutionSummary, LogLine, to_datetime, to_epoch

if TYPE_CHECKING:
    import duckdb

FAILED = "(" + ", ".join(f"'{s.value}'" for s in sorted(FAILURES)) + ")"
UNFINISHED = "('pending', 'running')"


def _filters(
    workflow: str | None, status: str | None, since: datetime | None, prefix: str = ""
) -> tuple[str, list[Any]]:
    """A WHERE clause (possibly empty) and its parameters for the common filters."""
    clauses: list[str] = []
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
    where, params = _filters(workflow, status, since)
    limit_sql = ""
    if limit is not None:
        limit_sql = "LIMIT ?"
        params.append(max(int(limit), 0))
    rows = con.execute(
        f"""
        WITH top AS (
            SELECT id, workflow, status, started_at, ended_at, duration_ms, "trigger", task_count
            FROM executions {where}
            ORDER BY started_at DESC NULLS LAST, id DESC {limit_sql}
        ), failed AS (
            SELECT execution_id, count(*) AS n FROM task_runs
            WHERE execution_id IN (SELECT id FROM top) AND status IN {FAILED}
            GROUP BY execution_id
        )
        SELECT id, workflow, status, epoch(started_at), epoch(ended_at), duration_ms,
               "trigger", task_count, coalesce(failed.n, 0)
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


def _dicts(cursor: duckdb.DuckDBPyConnection, times: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """Rows of the last statement as dicts; columns named in ``times`` become datetimes."""
    names = [d[0] for d in cursor.description or []]
    out = []
    for row in cursor.fetchall():
        item = dict(zip(names, row, strict=True))
        for name in times:
            item[name] = to_datetime(item[name])
        out.append(item)
    return out


def task_metrics(
    con: duckdb.DuckDBPyConnection, workflow: str | None, since: datetime | None
) -> list[dict[str, Any]]:
    """Per (workflow, task_id): runs, failures, retries, duration statistics in ms, and the
    error its failures most often ended with."""
    where, params = _filters(workflow, None, since, prefix="e.")
    con.execute(
        f"""
        SELECT e.workflow, t.task_id,
               count(*) FILTER (WHERE t.status NOT IN ('pending', 'skipped')) AS runs,
               count(*) FILTER (WHERE t.status IN {FAILED}) AS failures,
               coalesce(sum(greatest(t.attempts - 1, 0)), 0)::BIGINT AS retries,
               avg(t.duration_ms) AS avg_ms,
               quantile_cont(t.duration_ms, 0.5) AS p50_ms,
               quantile_cont(t.duration_ms, 0.95) AS p95_ms,
               mode(t.error) FILTER (WHERE t.status IN {FAILED}) AS most_common_failure
        FROM task_runs AS t JOIN executions AS e ON e.id = t.execution_id
        {where}
        GROUP BY e.workflow, t.task_id
        ORDER BY e.workflow, t.task_id
        """,
        params,
    )
    return _dicts(con)


def workflow_metrics(
    con: duckdb.DuckDBPyConnection, workflow: str | None, since: datetime | None
) -> list[dict[str, Any]]:
    """Per workflow: run counts, success rate over finished runs, durations, latest run."""
    where, params = _filters(workflow, None, since)
    con.execute(
        f"""
        SELECT workflow,
               count(*) AS runs,
               count(*) FILTER (WHERE status = 'succeeded') AS succeeded,
               count(*) FILTER (WHERE status IN {FAILED}) AS failed,
               count(*) FILTER (WHERE status = 'succeeded')
                   / nullif(count(*) FILTER (WHERE status NOT IN {UNFINISHED}), 0)
                   AS success_rate,
               avg(duration_ms) AS avg_ms,
               quantile_cont(duration_ms, 0.5) AS p50_ms,
               quantile_cont(duration_ms, 0.95) AS p95_ms,
               epoch(max(started_at)) AS last_started_at,
               arg_max(status, started_at) AS last_status
        FROM executions {where}
        GROUP BY workflow
        ORDER BY workflow
        """,
        params,
    )
    return _dicts(con, times=("last_started_at",))
