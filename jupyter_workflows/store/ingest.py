"""Bring the index up to date from the journals, in a few set-based statements per batch.

Changed journals are read together by one ``read_json`` into a temporary table; the rows of
their executions, tasks and attempts are then deleted and rebuilt from the whole journal (the
latest event per key wins), while log lines are only appended past the last seq ingested.
"""

from __future__ import annotations

import contextlib
import logging
from typing import TYPE_CHECKING

from .finding import JournalFile

if TYPE_CHECKING:
    import duckdb

# Every field any event kind writes, with its type. Explicit columns: no schema sniffing, and
# a journal missing a field (or with an unknown one) reads the same as any other.
JOURNAL_COLUMNS: dict[str, str] = {
    "seq": "BIGINT",
    "kind": "VARCHAR",
    "at": "DOUBLE",
    "workflow": "VARCHAR",
    "version": "VARCHAR",
    "file": "VARCHAR",
    "project_root": "VARCHAR",
    "trigger": "VARCHAR",
    "pid": "BIGINT",
    "host": "VARCHAR",
    "pid_start": "VARCHAR",
    "tasks": "JSON",
    "task_id": "VARCHAR",
    "name": "VARCHAR",
    "type": "VARCHAR",
    "parent": "VARCHAR",
    "attempt": "BIGINT",
    "stream": "VARCHAR",
    "line": "VARCHAR",
    "status": "VARCHAR",
    "started_at": "DOUBLE",
    "exit_code": "BIGINT",
    "error": "VARCHAR",
    "result": "JSON",
    "outputs": "JSON",
    "attempts": "BIGINT",
    "end_estimated": "BOOLEAN",
    "executor": "VARCHAR",
    "cluster": "VARCHAR",
    "dashboard": "VARCHAR",
    "worker": "VARCHAR",
    "cancelled_by": "VARCHAR",
    "resumed_from": "VARCHAR",
    "params": "JSON",
    "reused": "VARCHAR",
    "reused_from": "VARCHAR",
    "cache_key": "VARCHAR",
}

log = logging.getLogger(__name__)


def ingest(
    con: duckdb.DuckDBPyConnection, files: list[JournalFile], *, reset: bool = False
) -> None:
    """Rebuild the rows of ``files`` from their journals in one transaction.

    ``reset`` drops the execution's log lines first (the journal was replaced, not appended);
    a journal that shrank is treated the same way.
    """
    if not files:
        return
    con.execute("BEGIN TRANSACTION")
    try:
        _load_events(con, files, reset)
        for statement in _REBUILD:
            con.execute(statement)
        con.execute("COMMIT")
    except BaseException:
        # A COMMIT that failed (a full disk) has ended the transaction already: the error to
        # report is the first one, not the ROLLBACK's "no transaction is active".
        with contextlib.suppress(Exception):
            con.execute("ROLLBACK")
        raise
    finally:
        con.execute("DROP TABLE IF EXISTS temp.ev; DROP TABLE IF EXISTS temp.changed")


def ingest_tolerant(con: duckdb.DuckDBPyConnection, files: list[JournalFile]) -> list[JournalFile]:
    """Ingest ``files`` together or, if that fails, one by one, logging and skipping failures;
    returns the ones that failed (a caller must not forget them: they are tried again).

    One unreadable journal (deleted mid-refresh, unreadable permissions) must not stop every
    other from being ingested, nor make every read of the history fail. A full disk is no
    journal's fault: it is raised (``duckdb.Error``), as the index cannot take anything now.
    """
    import duckdb

    try:
        ingest(con, files)
        return []
    except duckdb.Error as exc:
        _raise_if_disk_full(exc)
        if len(files) == 1:
            log.warning("cannot ingest journal %s: %s", files[0].path, exc)
            return list(files)
    failed = []
    for file in files:
        try:
            ingest(con, [file])
        except duckdb.Error as exc:
            _raise_if_disk_full(exc)
            log.warning("cannot ingest journal %s: %s", file.path, exc)
            failed.append(file)
    return failed


def _raise_if_disk_full(exc: Exception) -> None:
    if any(mark in str(exc) for mark in ("No space left", "Disk quota")):
        raise exc


def _load_events(con: duckdb.DuckDBPyConnection, files: list[JournalFile], reset: bool) -> None:
    """Fill temp tables ``changed`` (one row per journal) and ``ev`` (its complete lines)."""
    paths = [str(f.path) for f in files]
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE changed AS
        SELECT c.*,
               CASE WHEN j.size IS NULL THEN 0
                    WHEN ? OR c.size < j.size THEN -1
                    ELSE j.last_seq END AS after_seq
        FROM (SELECT unnest(?::VARCHAR[]) AS execution_id,
                     unnest(?::VARCHAR[]) AS path,
                     unnest(?::BIGINT[]) AS size) AS c
        LEFT JOIN journals AS j USING (execution_id)
        """,
        [reset, [f.execution_id for f in files], paths, [f.size for f in files]],
    )
    # A line still being written reads as all NULLs (ignore_errors): skip it on seq, it will
    # be whole next time. The file name, not the line's execution_id, says whose line it is.
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE ev AS
        SELECT c.execution_id AS eid, r.* EXCLUDE (filename)
        FROM read_json(?, format = 'newline_delimited', columns = ?,
                       ignore_errors = true, filename = true) AS r
        JOIN changed AS c ON c.path = r.filename
        WHERE r.seq IS NOT NULL
        """,
        [paths, JOURNAL_COLUMNS],
    )


_LATEST = "QUALIFY row_number() OVER (PARTITION BY {keys} ORDER BY seq DESC) = 1"

_TASK_RUNS = f"""
INSERT INTO task_runs (execution_id, task_id, name, "type", parent, status, started_at, ended_at,
                       duration_ms, attempts, exit_code, result, outputs, error, depends_on,
                       "position", reused, reused_from, definition_hash, cache_key)
WITH rs AS (
    SELECT eid, tasks FROM ev WHERE kind = 'run_started' {_LATEST.format(keys="eid")}
), declared AS (
    SELECT eid, task ->> 'id' AS task_id, task ->> 'name' AS name, task ->> 'type' AS type,
           task ->> 'parent' AS parent, task -> 'depends_on' AS depends_on, pos,
           task ->> 'hash' AS definition_hash
    FROM (SELECT eid, unnest(tasks::JSON[]) AS task,
                 unnest(range(json_array_length(tasks)::BIGINT)) AS pos
          FROM rs WHERE json_type(tasks) = 'ARRAY')
), ts AS (
    SELECT * FROM ev WHERE kind = 'task_started' {_LATEST.format(keys="eid, task_id")}
), te AS (
    SELECT * FROM ev WHERE kind = 'task_ended' {_LATEST.format(keys="eid, task_id")}
), seen AS (
    SELECT eid, task_id, min(seq) AS first_seq,
           count(DISTINCT attempt) FILTER (WHERE kind LIKE 'attempt_%') AS n_attempts
    FROM ev WHERE task_id IS NOT NULL GROUP BY eid, task_id
), k AS (
    SELECT coalesce(d.eid, s.eid) AS eid, coalesce(d.task_id, s.task_id) AS task_id,
           d.name, d.type, d.parent, d.depends_on, d.pos, d.definition_hash, s.first_seq,
           s.n_attempts
    FROM declared AS d FULL JOIN seen AS s ON s.eid = d.eid AND s.task_id = d.task_id
    WHERE coalesce(d.task_id, s.task_id) IS NOT NULL
), t AS (
    SELECT k.*, te.seq > coalesce(ts.seq, 0) AS ended, ts.seq AS ts_seq,
           CASE WHEN te.seq > coalesce(ts.seq, 0) THEN coalesce(te.started_at, ts."at")
                ELSE ts."at" END AS started,
           te."at" AS te_at, ts.name AS ts_name, ts.type AS ts_type, ts.parent AS ts_parent,
           te.name AS te_name, te.type AS te_type, te.parent AS te_parent, te.status AS te_status,
           te.attempts AS te_attempts, te.exit_code, te.result, te.outputs, te.error,
           te.reused, te.reused_from, te.cache_key
    FROM k
    LEFT JOIN ts ON ts.eid = k.eid AND ts.task_id = k.task_id
    LEFT JOIN te ON te.eid = k.eid AND te.task_id = k.task_id
)
SELECT eid, task_id,
       coalesce(te_name, ts_name, name),
       coalesce(te_type, ts_type, type, 'shell'),
       coalesce(te_parent, ts_parent, parent),
       CASE WHEN ended THEN te_status WHEN ts_seq IS NOT NULL THEN 'running' ELSE 'pending' END,
       to_timestamp(started),
       CASE WHEN ended THEN to_timestamp(te_at) END,
       CASE WHEN ended THEN (te_at - started) * 1000 END,
       greatest(CASE WHEN ended THEN te_attempts END, coalesce(n_attempts, 0)),
       CASE WHEN ended THEN exit_code END,
       CASE WHEN ended THEN result END,
       CASE WHEN ended THEN outputs END,
       CASE WHEN ended THEN error END,
       depends_on,
       row_number() OVER (PARTITION BY eid ORDER BY pos NULLS LAST, first_seq) - 1,
       CASE WHEN ended THEN reused END,
       CASE WHEN ended THEN reused_from END,
       definition_hash,
       CASE WHEN ended THEN cache_key END
FROM t
"""

_ATTEMPTS = f"""
INSERT INTO attempts (execution_id, task_id, attempt, status, started_at, ended_at, duration_ms,
                      exit_code, error, executor, worker, host)
WITH s AS (
    SELECT * FROM ev WHERE kind = 'attempt_started' {_LATEST.format(keys="eid, task_id, attempt")}
), e AS (
    SELECT * FROM ev WHERE kind = 'attempt_ended' {_LATEST.format(keys="eid, task_id, attempt")}
), p AS (
    SELECT * FROM ev WHERE kind = 'attempt_placed' {_LATEST.format(keys="eid, task_id, attempt")}
), a AS (
    SELECT eid, task_id, attempt, e.seq > coalesce(s.seq, 0) AS ended,
           coalesce(s."at", e.started_at) AS started, e."at" AS e_at,
           e.status, e.exit_code, e.error
    FROM s FULL JOIN e USING (eid, task_id, attempt)
    WHERE task_id IS NOT NULL AND attempt IS NOT NULL
)
SELECT a.eid, a.task_id, a.attempt,
       CASE WHEN ended THEN a.status ELSE 'running' END,
       to_timestamp(started),
       CASE WHEN ended THEN to_timestamp(e_at) END,
       CASE WHEN ended THEN (e_at - started) * 1000 END,
       CASE WHEN ended THEN a.exit_code END,
       CASE WHEN ended THEN a.error END,
       p.executor, p.worker, nullif(p.host, '')
FROM a LEFT JOIN p USING (eid, task_id, attempt)
"""

_EXECUTIONS = f"""
INSERT INTO executions (id, workflow, version, file, project_root, "trigger", status, started_at,
                        ended_at, duration_ms, error, pid, host, pid_start, task_count,
                        end_estimated, executor, cluster, dashboard, cancelled_by,
                        resumed_from, params)
WITH rs AS (
    SELECT * FROM ev WHERE kind = 'run_started' {_LATEST.format(keys="eid")}
), re AS (
    SELECT * FROM ev WHERE kind = 'run_ended' {_LATEST.format(keys="eid")}
), tc AS (
    SELECT execution_id, count(*) AS n FROM task_runs
    WHERE execution_id IN (SELECT execution_id FROM changed) GROUP BY execution_id
)
SELECT rs.eid, rs.workflow, rs.version, rs.file, rs.project_root, rs."trigger",
       CASE WHEN re.seq > rs.seq THEN re.status ELSE 'running' END,
       to_timestamp(rs."at"),
       CASE WHEN re.seq > rs.seq THEN to_timestamp(re."at") END,
       CASE WHEN re.seq > rs.seq THEN (re."at" - rs."at") * 1000 END,
       CASE WHEN re.seq > rs.seq THEN re.error END,
       rs.pid, rs.host, rs.pid_start, coalesce(tc.n, 0),
       re.seq > rs.seq AND coalesce(re.end_estimated, false),
       rs.executor, rs.cluster, rs.dashboard,
       CASE WHEN re.seq > rs.seq THEN re.cancelled_by END, rs.resumed_from, rs.params
FROM rs
LEFT JOIN re ON re.eid = rs.eid
LEFT JOIN tc ON tc.execution_id = rs.eid
"""

# Order matters: executions counts the task_runs rows just rebuilt.
_REBUILD: list[str] = [
    "DELETE FROM executions WHERE id IN (SELECT execution_id FROM changed)",
    "DELETE FROM task_runs WHERE execution_id IN (SELECT execution_id FROM changed)",
    "DELETE FROM attempts WHERE execution_id IN (SELECT execution_id FROM changed)",
    # Only journals that were replaced or shrank lose their lines; new ones have none.
    "DELETE FROM logs WHERE execution_id IN (SELECT execution_id FROM changed WHERE after_seq < 0)",
    _TASK_RUNS,
    _ATTEMPTS,
    _EXECUTIONS,
    """
    INSERT INTO logs
    SELECT ev.eid, ev.task_id, ev.attempt, ev.seq, to_timestamp(ev."at"), ev.stream, ev.line
    FROM ev JOIN changed AS c ON c.execution_id = ev.eid
    WHERE ev.kind = 'output' AND ev.seq > c.after_seq
    ORDER BY ev.eid, ev.seq
    """,
    "DELETE FROM journals WHERE execution_id IN (SELECT execution_id FROM changed)",
    """
    INSERT INTO journals
    SELECT c.execution_id, c.path, coalesce(max(ev.seq), 0), c.size,
           coalesce(bool_or(ev.kind = 'run_ended'), false)
    FROM changed AS c LEFT JOIN ev ON ev.eid = c.execution_id
    GROUP BY c.execution_id, c.path, c.size
    """,
]
