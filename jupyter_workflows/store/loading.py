"""Rebuild an ``Execution`` record from its index rows, and resolve ids given by prefix."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from ..errors import AmbiguousExecutionId, ExecutionNotFound
from ..execution.records import Attempt, Execution, TaskRecord
from ..execution.states import State

if TYPE_CHECKING:
    import duckdb


def resolve_id(con: duckdb.DuckDBPyConnection, id_or_prefix: str) -> str:
    """The one execution id equal to, or else starting with, ``id_or_prefix`` (like git)."""
    if not id_or_prefix:
        raise ExecutionNotFound(id_or_prefix)
    if con.execute("SELECT 1 FROM executions WHERE id = ?", [id_or_prefix]).fetchone():
        return id_or_prefix
    matches = [
        r[0]
        for r in con.execute(
            "SELECT id FROM executions WHERE starts_with(id, ?) ORDER BY id", [id_or_prefix]
        ).fetchall()
    ]
    if not matches:
        raise ExecutionNotFound(id_or_prefix)
    if len(matches) > 1:
        raise AmbiguousExecutionId(id_or_prefix, matches)
    return matches[0]


def _json(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def _list(text: str | None) -> list[Any]:
    value = _json(text)
    return list(value) if isinstance(value, list) else []


def _dict(text: str | None) -> dict[str, Any]:
    value = _json(text)
    return dict(value) if isinstance(value, dict) else {}


def load_execution(con: duckdb.DuckDBPyConnection, execution_id: str, logs: int) -> Execution:
    """The execution ``execution_id`` with tasks (by start time), attempts and ``logs`` lines."""
    row = con.execute(
        """
        SELECT id, workflow, status, version, file, project_root, "trigger",
               epoch(started_at), epoch(ended_at), error, pid, host, end_estimated, executor,
               cluster, dashboard, cancelled_by, resumed_from, params
        FROM executions WHERE id = ?
        """,
        [execution_id],
    ).fetchone()
    if row is None:
        raise ExecutionNotFound(execution_id)
    execution = Execution(
        id=row[0],
        workflow=row[1],
        status=State(row[2]),
        version=row[3],
        file=row[4],
        project_root=row[5],
        trigger=row[6],
        started_at=row[7],
        ended_at=row[8],
        error=row[9],
        pid=row[10],
        host=row[11],
        end_estimated=bool(row[12]),
        executor=row[13],
        cluster=row[14],
        dashboard=row[15],
        cancelled_by=row[16],
        resumed_from=row[17],
        params=_dict(row[18]) or None,
    )
    for task in _tasks(con, execution_id):
        execution.tasks[task.id] = task
    _add_attempts(con, execution)
    if logs > 0:
        _add_log_tails(con, execution, logs)
    return execution


def _tasks(con: duckdb.DuckDBPyConnection, execution_id: str) -> list[TaskRecord]:
    rows = con.execute(
        """
        SELECT task_id, name, "type", parent, depends_on, status, epoch(started_at),
               epoch(ended_at), exit_code, result, outputs, error, reused, reused_from,
               definition_hash, cache_key
        FROM task_runs WHERE execution_id = ?
        ORDER BY started_at NULLS LAST, "position", task_id
        """,
        [execution_id],
    ).fetchall()
    return [
        TaskRecord(
            id=r[0],
            name=r[1],
            type=r[2] or "shell",
            parent=r[3],
            depends_on=_list(r[4]),
            status=State(r[5]),
            started_at=r[6],
            ended_at=r[7],
            exit_code=r[8],
            result=_json(r[9]),
            outputs=_dict(r[10]),
            error=r[11],
            reused=r[12],
            reused_from=r[13],
            definition_hash=r[14],
            cache_key=r[15],
        )
        for r in rows
    ]


def _add_attempts(con: duckdb.DuckDBPyConnection, execution: Execution) -> None:
    rows = con.execute(
        """
        SELECT task_id, attempt, status, epoch(started_at), epoch(ended_at), exit_code, error,
               executor, worker, host
        FROM attempts WHERE execution_id = ? ORDER BY task_id, attempt
        """,
        [execution.id],
    ).fetchall()
    for task_id, number, status, started, ended, exit_code, error, executor, worker, host in rows:
        task = execution.tasks.get(task_id)
        if task is not None:
            task.attempts.append(
                Attempt(
                    number=number,
                    status=State(status),
                    started_at=started,
                    ended_at=ended,
                    exit_code=exit_code,
                    error=error,
                    executor=executor,
                    worker=worker,
                    host=host,
                )
            )


def _add_log_tails(con: duckdb.DuckDBPyConnection, execution: Execution, lines: int) -> None:
    rows = con.execute(
        """
        SELECT task_id, line FROM logs WHERE execution_id = ?
        QUALIFY row_number() OVER (PARTITION BY task_id ORDER BY seq DESC) <= ?
        ORDER BY seq
        """,
        [execution.id, lines],
    ).fetchall()
    for task_id, line in rows:
        task = execution.tasks.get(task_id)
        if task is not None:
            task.log_tail.append(line)
