"""``database``: a query, a transaction or a folder of migrations on SQLite, DuckDB or PostgreSQL.

Connections (``config.connection``, templated, e.g. ``${env.DATABASE_URL}``)::

    sqlite:///data/app.db  sqlite:////abs/app.db  sqlite:///:memory:     stdlib sqlite3
    duckdb:///data/app.duckdb  (same path forms)                         duckdb
    postgresql://user:pass@host:5432/db  (or postgres://)                psycopg 3

Operations:
- ``query``: one statement with ``params``; ``result`` is its rows as objects (column ->
  JSON value) and ``outputs.rows`` their number, or ``{"rowcount": n}`` for a statement that
  returns no rows.
- ``transaction``: ``queries`` in one transaction, all or none; ``result`` is the per-query
  row counts. ``params`` there is one entry per query (a list, an object or null).
- ``migration``: the ``.sql`` files of ``migrations_path`` in name order, each in its own
  transaction, recorded in ``jupyter_workflows_migrations`` so a rerun applies only new files.
  A failing file is rolled back and fails the task; files applied before it stay applied.
  A file must not contain its own BEGIN/COMMIT.

Placeholders are each driver's own, nothing is translated: SQLite ``?`` / ``:name``, DuckDB
``?`` / ``$1`` / ``$name``, PostgreSQL ``%s`` / ``%(name)s``. ``params`` is templated (a lone
``${...}`` keeps its type). A ``${...}`` in a query is filled for its SQL context so that a
value stays data (``'${env.DIR}/x.json'``, ``LIMIT ${env.N}``; see ``templating``), or
refused where that cannot be guaranteed. Migration files are not templated.

``rollback_on_failure: false`` runs without a wrapping transaction: what the database committed
statement by statement before an error stays (PostgreSQL still runs one multi-statement file
as a unit). Passwords never appear in log lines, errors, results or outputs. Blocking drivers
run in a worker thread; a timeout or cancellation interrupts the running statement.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from ..base import DeferredTaskType, ModelAt, models_from

if TYPE_CHECKING:
    from .model import DatabaseConfig, DatabaseTask  # noqa: F401

__getattr__ = models_from(
    "jupyter_workflows.tasks.database.model", "DatabaseConfig", "DatabaseTask"
)


class DatabaseType(DeferredTaskType):
    name = "database"
    model = ModelAt("jupyter_workflows.tasks.database.model:DatabaseTask")
    implementation = "jupyter_workflows.tasks.database.runner:DatabaseRunner"
    path_keys = ("config.migrations_path",)

    @classmethod
    def path_fields(cls, task: Mapping[str, Any]) -> Iterator[tuple[str, Any]]:
        from .urls import file_path

        yield from super().path_fields(task)
        config = task.get("config")
        connection = config.get("connection") if isinstance(config, Mapping) else None
        path = file_path(connection) if isinstance(connection, str) else None
        if path is not None:
            yield "config.connection", path
