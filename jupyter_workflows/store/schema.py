"""The index schema as numbered migrations, applied in order when the index is opened.

Append a step to ``MIGRATIONS`` to change the schema; never edit a step that has shipped.
The index can always be rebuilt from the journals (delete ``index.duckdb``), so a migration
may also drop and refill a table. ``docs/store-schema.md`` documents every column.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from ..errors import StoreError

if TYPE_CHECKING:
    import duckdb

MIGRATIONS: list[str] = [
    # 1: the initial schema.
    """
    CREATE TABLE executions (
        id VARCHAR PRIMARY KEY,
        workflow VARCHAR NOT NULL,
        version VARCHAR,
        file VARCHAR,
        project_root VARCHAR,
        "trigger" VARCHAR,
        status VARCHAR NOT NULL,
        started_at TIMESTAMPTZ,
        ended_at TIMESTAMPTZ,
        duration_ms DOUBLE,
        error VARCHAR,
        pid BIGINT,
        host VARCHAR,
        pid_start VARCHAR,
        task_count INTEGER
    );
    CREATE TABLE task_runs (
        execution_id VARCHAR NOT NULL,
        task_id VARCHAR NOT NULL,
        name VARCHAR,
        "type" VARCHAR,
        parent VARCHAR,
        status VARCHAR NOT NULL,
        started_at TIMESTAMPTZ,
        ended_at TIMESTAMPTZ,
        duration_ms DOUBLE,
        attempts INTEGER,
        exit_code INTEGER,
        result JSON,
        outputs JSON,
        error VARCHAR,
        depends_on JSON,
        "position" INTEGER
    );
    CREATE TABLE attempts (
        execution_id VARCHAR NOT NULL,
        task_id VARCHAR NOT NULL,
        attempt INTEGER NOT NULL,
        status VARCHAR NOT NULL,
        started_at TIMESTAMPTZ,
        ended_at TIMESTAMPTZ,
        duration_ms DOUBLE,
        exit_code INTEGER,
        error VARCHAR
    );
    CREATE TABLE logs (
        execution_id VARCHAR NOT NULL,
        task_id VARCHAR,
        attempt INTEGER,
        seq BIGINT NOT NULL,
        "at" TIMESTAMPTZ,
        stream VARCHAR,
        line VARCHAR
    );
    CREATE TABLE journals (
        execution_id VARCHAR PRIMARY KEY,
        path VARCHAR NOT NULL,
        last_seq BIGINT NOT NULL,
        size BIGINT NOT NULL,
        complete BOOLEAN NOT NULL
    );
    """,
    # 2: facts about the index itself (has it read journals/done/ in full?).
    "CREATE TABLE store_meta (key VARCHAR PRIMARY KEY, value VARCHAR NOT NULL);",
    # 3: a crashed run's end is an estimate (the runner's last sign of life), and says so.
    "ALTER TABLE executions ADD COLUMN end_estimated BOOLEAN DEFAULT false;",
    # 4: where attempts ran (attempt_placed) and the run's executor (run_started). Rows
    # indexed before stay NULL: journals written before placement was recorded have none.
    """
    ALTER TABLE executions ADD COLUMN executor VARCHAR;
    ALTER TABLE executions ADD COLUMN cluster VARCHAR;
    ALTER TABLE executions ADD COLUMN dashboard VARCHAR;
    ALTER TABLE attempts ADD COLUMN executor VARCHAR;
    ALTER TABLE attempts ADD COLUMN worker VARCHAR;
    ALTER TABLE attempts ADD COLUMN host VARCHAR;
    """,
    # 5: who asked a cancelled run to stop (run_ended.cancelled_by). Rows indexed before stay
    # NULL: no journal written before cancel requests existed has one.
    "ALTER TABLE executions ADD COLUMN cancelled_by VARCHAR;",
    # 6: resume and cache: the run an execution resumed, the tasks it reused rather than ran
    # (and from which run), each task's definition hash and cache key. Rows indexed before
    # stay NULL: journals written before these were recorded have none.
    """
    ALTER TABLE executions ADD COLUMN resumed_from VARCHAR;
    ALTER TABLE task_runs ADD COLUMN reused VARCHAR;
    ALTER TABLE task_runs ADD COLUMN reused_from VARCHAR;
    ALTER TABLE task_runs ADD COLUMN definition_hash VARCHAR;
    ALTER TABLE task_runs ADD COLUMN cache_key VARCHAR;
    """,
    # 7: the run's parameters (run_started.params), which a resume runs with again. Rows
    # indexed before stay NULL: journals written before parameters were recorded have none.
    "ALTER TABLE executions ADD COLUMN params JSON;",
]

SCHEMA_VERSION = len(MIGRATIONS)


def migrate(con: duckdb.DuckDBPyConnection) -> int:
    """Bring the schema up to ``SCHEMA_VERSION``, one transaction per step; return the version."""
    con.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations "
        "(version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL)"
    )
    row = con.execute("SELECT coalesce(max(version), 0) FROM schema_migrations").fetchone()
    current = int(row[0]) if row else 0
    if current > SCHEMA_VERSION:
        raise StoreError(
            f"the execution index has schema version {current}, newer than this version of "
            f"jupyter-workflows knows ({SCHEMA_VERSION}); upgrade, or delete index.duckdb to "
            "rebuild it from the journals"
        )
    for version in range(current + 1, SCHEMA_VERSION + 1):
        con.execute("BEGIN TRANSACTION")
        try:
            con.execute(MIGRATIONS[version - 1])
            con.execute("INSERT INTO schema_migrations VALUES (?, now())", [version])
            con.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(Exception):  # a failed COMMIT has ended it already
                con.execute("ROLLBACK")
            raise
    return SCHEMA_VERSION
