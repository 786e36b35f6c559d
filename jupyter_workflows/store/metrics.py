"""Aggregate queries over the index: run and task metrics, and the figures alert rules use.

Metric definitions are in docs/store-schema.md: ``failed`` counts failed, timed out,
cancelled and crashed runs; ``success_rate`` is over finished runs (None when none finished);
durations are in milliseconds, continuous percentiles.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

from .models import (
    DurationMedian,
    RunMetrics,
    TaskDuration,
    TaskMetrics,
    WorkflowMetrics,
    to_datetime,
)
from .queries import FAILED, UNFINISHED, filters

if TYPE_CHECKING:
    import duckdb

# The runs an alert rule's window counts: every end but skipped.
FINISHED = "('succeeded', 'failed', 'timed_out', 'cancelled', 'crashed')"

# The columns of RunMetrics, over the executions a query selects.
RUN_AGGREGATES = f"""
    count(*) AS runs,
    count(*) FILTER (WHERE status = 'succeeded') AS succeeded,
    count(*) FILTER (WHERE status IN {FAILED}) AS failed,
    count(*) FILTER (WHERE status = 'succeeded')
        / nullif(count(*) FILTER (WHERE status NOT IN {UNFINISHED}), 0) AS success_rate,
    avg(duration_ms) AS avg_ms,
    quantile_cont(duration_ms, 0.5) AS p50_ms,
    quantile_cont(duration_ms, 0.95) AS p95_ms
"""


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


def run_metrics(
    con: duckdb.DuckDBPyConnection, workflow: str | None, since: datetime | None
) -> RunMetrics:
    """Run counts, success rate and durations over all the executions selected, as one."""
    where, params = filters(workflow, None, since)
    con.execute(f"SELECT {RUN_AGGREGATES} FROM executions {where}", params)
    (row,) = _dicts(con)  # an aggregate without GROUP BY: always one row
    return cast(RunMetrics, row)


def workflow_metrics(
    con: duckdb.DuckDBPyConnection, workflow: str | None, since: datetime | None
) -> list[WorkflowMetrics]:
    """Per workflow: run counts, success rate over finished runs, durations, latest run."""
    where, params = filters(workflow, None, since)
    con.execute(
        f"""
        SELECT workflow, {RUN_AGGREGATES},
               epoch(max(started_at)) AS last_started_at,
               arg_max(status, started_at) AS last_status
        FROM executions {where}
        GROUP BY workflow
        ORDER BY workflow
        """,
        params,
    )
    return cast("list[WorkflowMetrics]", _dicts(con, times=("last_started_at",)))


def task_metrics(
    con: duckdb.DuckDBPyConnection, workflow: str | None, since: datetime | None
) -> list[TaskMetrics]:
    """Per (workflow, task_id): runs, failures, retries, duration statistics in ms, and the
    error its failures most often ended with."""
    where, params = filters(workflow, None, since, prefix="e.")
    con.execute(
        f"""
        SELECT e.workflow, t.task_id,
               count(*) FILTER (WHERE t.status NOT IN ('pending', 'skipped')
                                AND t.reused IS NULL) AS runs,
               count(*) FILTER (WHERE t.status IN {FAILED}) AS failures,
               coalesce(sum(greatest(t.attempts - 1, 0)), 0)::BIGINT AS retries,
               avg(t.duration_ms) FILTER (WHERE t.reused IS NULL) AS avg_ms,
               quantile_cont(t.duration_ms, 0.5) FILTER (WHERE t.reused IS NULL) AS p50_ms,
               quantile_cont(t.duration_ms, 0.95) FILTER (WHERE t.reused IS NULL) AS p95_ms,
               count(*) FILTER (WHERE t.reused IS NOT NULL) AS reused,
               mode(t.error) FILTER (WHERE t.status IN {FAILED}) AS most_common_failure
        FROM task_runs AS t JOIN executions AS e ON e.id = t.execution_id
        {where}
        GROUP BY e.workflow, t.task_id
        ORDER BY e.workflow, t.task_id
        """,
        params,
    )
    return cast("list[TaskMetrics]", _dicts(con))


def task_durations(
    con: duckdb.DuckDBPyConnection, workflow: str | None, since: datetime | None
) -> list[TaskDuration]:
    """Every task run with a duration, by workflow and task id."""
    # A reused task did not run here: its (empty) duration is no run of the task.
    also = ["t.duration_ms IS NOT NULL", "t.reused IS NULL"]
    where, params = filters(workflow, None, since, prefix="e.", also=also)
    con.execute(
        f"""
        SELECT e.workflow, t.execution_id, t.task_id, t.status, t.duration_ms
        FROM task_runs AS t JOIN executions AS e ON e.id = t.execution_id
        {where}
        ORDER BY e.workflow, t.task_id
        """,
        params,
    )
    return cast("list[TaskDuration]", _dicts(con))


def finished_statuses(
    con: duckdb.DuckDBPyConnection, workflow: str, up_to: str, limit: int
) -> list[str]:
    """Statuses of the workflow's last ``limit`` finished runs started no later than the
    execution ``up_to`` (itself included), newest first."""
    rows = con.execute(
        f"""
        SELECT status FROM executions
        WHERE workflow = ? AND status IN {FINISHED}
          AND started_at <= (SELECT started_at FROM executions WHERE id = ?)
        ORDER BY started_at DESC LIMIT ?
        """,
        [workflow, up_to, limit],
    ).fetchall()
    return [status for (status,) in rows]


def success_median(
    con: duckdb.DuckDBPyConnection, workflow: str, before: str, limit: int
) -> DurationMedian:
    """The median duration of the workflow's last ``limit`` successful runs (with a duration)
    started before the execution ``before``."""
    row = con.execute(
        """
        SELECT count(*), median(duration_ms) FROM (
            SELECT duration_ms FROM executions
            WHERE workflow = ? AND status = 'succeeded' AND id <> ?
              AND duration_ms IS NOT NULL
              AND started_at < (SELECT started_at FROM executions WHERE id = ?)
            ORDER BY started_at DESC LIMIT ?)
        """,
        [workflow, before, before, limit],
    ).fetchone()
    runs, median = row if row else (0, None)
    return DurationMedian(int(runs), None if median is None else float(median))


def success_durations(
    con: duckdb.DuckDBPyConnection, workflow: str, before: str, limit: int
) -> list[float]:
    """Durations (ms) of the workflow's last ``limit`` successful runs started before the
    execution ``before``, newest first (the slow-run rule's baseline)."""
    rows = con.execute(
        """
        SELECT duration_ms FROM executions
        WHERE workflow = ? AND status = 'succeeded' AND id <> ? AND duration_ms IS NOT NULL
          AND started_at < (SELECT started_at FROM executions WHERE id = ?)
        ORDER BY started_at DESC LIMIT ?
        """,
        [workflow, before, before, limit],
    ).fetchall()
    return [float(ms) for (ms,) in rows]


def recent_finished(
    con: duckdb.DuckDBPyConnection, workflow: str, limit: int
) -> list[tuple[str, str, float, float | None]]:
    """(id, status, started_at epoch seconds, duration_ms) of the workflow's last ``limit``
    finished runs, oldest first: what seeds its recent-runs file (``store/recent.py``)."""
    rows = con.execute(
        f"""
        SELECT id, status, epoch(started_at), duration_ms FROM executions
        WHERE workflow = ? AND status IN {FINISHED}
        ORDER BY started_at DESC LIMIT ?
        """,
        [workflow, limit],
    ).fetchall()
    return [(str(i), str(s), float(t), None if d is None else float(d)) for i, s, t, d in rows][
        ::-1
    ]
