"""Schema migrations: recorded, applied once, and a newer index is refused."""

from __future__ import annotations

import pytest

from jupyter_workflows.errors import StoreError
from jupyter_workflows.store import ExecutionStore
from jupyter_workflows.store.schema import SCHEMA_VERSION


def test_the_schema_version_is_recorded_once(store: ExecutionStore) -> None:
    store.refresh()
    store.refresh()
    columns, rows = store.query("SELECT version, applied_at FROM schema_migrations")
    assert columns == ["version", "applied_at"]
    assert [r[0] for r in rows] == list(range(1, SCHEMA_VERSION + 1))
    assert all(r[1] is not None for r in rows)


def test_every_documented_table_exists(store: ExecutionStore) -> None:
    _, rows = store.query("SELECT table_name FROM duckdb_tables() ORDER BY table_name")
    assert [r[0] for r in rows] == [
        "attempts",
        "executions",
        "journals",
        "logs",
        "schema_migrations",
        "store_meta",
        "task_runs",
    ]


def test_an_index_from_a_newer_version_is_refused(store: ExecutionStore) -> None:
    import duckdb

    store.journals_dir.mkdir(parents=True)  # a store with a history (reads create none)
    store.refresh()
    con = duckdb.connect(str(store.index_path))
    con.execute("INSERT INTO schema_migrations VALUES (?, now())", [SCHEMA_VERSION + 1])
    con.close()
    with pytest.raises(StoreError, match="newer"):
        store.history()
