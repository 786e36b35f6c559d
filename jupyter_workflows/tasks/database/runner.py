"""The work of ``database`` tasks: connect, run the operation in a worker thread, report."""

from __future__ import annotations

import asyncio
import time
import traceback
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from ...definition.templates import find_references, render, render_value
from ..base import TaskContext, TaskResult, TaskType
from .base import Adapter, DatabaseFailure, StatementError, one_line
from .operations import OPERATIONS, Answer, Plan, migration_files, ms_since
from .templating import render_sql
from .urls import Connection, parse_connection, redact

if TYPE_CHECKING:
    from . import DatabaseConfig, DatabaseTask

__all__ = ["DatabaseRunner", "redact"]

T = TypeVar("T")
FAILED = 1  # the exit code of a failed database task
USES = {
    "query": {"query", "params"},
    "transaction": {"queries", "params"},
    "migration": {"migrations_path"},
}


class DatabaseRunner(TaskType):
    name = "database"

    async def run(self, task: DatabaseTask, ctx: TaskContext) -> TaskResult:  # type: ignore[override]
        connection: Connection | None = None
        try:
            connection = _connection(task.config, ctx)
            plan = _plan(task.config, ctx, connection.scheme)
            return await _execute(connection, plan, ctx)
        except (DatabaseFailure, StatementError) as exc:
            message = connection.scrub(str(exc)) if connection else str(exc)
            return TaskResult.failure(message, exit_code=FAILED)


def _connection(config: DatabaseConfig, ctx: TaskContext) -> Connection:
    url = render(config.connection, ctx.scope).strip()
    if not url and find_references(config.connection):  # say which variable was empty
        raise DatabaseFailure(f"database connection is empty: '{config.connection}' rendered to ''")
    connection = parse_connection(url, lambda path: ctx.resolve_path(path, "config.connection"))
    if connection.scheme == "postgresql":
        from .postgres_backend import libpq_passwords

        connection = connection.with_secrets(libpq_passwords(url))
    return connection


def _plan(config: DatabaseConfig, ctx: TaskContext, dialect: str) -> Plan:
    """Render and check what the operation needs; fields it does not use are warned about."""
    assert config.operation is not None  # the model infers it when the file leaves it out
    plan = Plan(config.operation, transactional=config.rollback_on_failure)
    for field in ("query", "queries", "params", "migrations_path"):
        if field not in USES[config.operation] and getattr(config, field):
            ctx.emit_line(
                "stderr", f"warning: '{field}' is not used by operation '{plan.operation}'"
            )
    params = render_value(config.params, ctx.scope)
    if config.operation == "query":
        plan.query = render_sql(config.query or "", ctx.scope, dialect, "query")
        plan.params = _params(params, "params")
    elif config.operation == "transaction":
        plan.queries = [
            render_sql(q, ctx.scope, dialect, f"query {i}") for i, q in enumerate(config.queries, 1)
        ]
        plan.query_params = _per_query(params, len(plan.queries))
    else:
        field = "config.migrations_path"
        folder = ctx.resolve_path(render(config.migrations_path or "", ctx.scope), field)
        if not folder.exists():
            raise DatabaseFailure(f"migrations folder {folder} does not exist")
        if folder.is_dir():
            for file in migration_files(folder):  # a file may be a symlink to elsewhere
                ctx.resolve_path(file, field)
        plan.migrations = folder
    return plan


def _params(value: Any, where: str) -> Any:
    if value is None or isinstance(value, (list, dict)):
        return value
    raise DatabaseFailure(
        f"{where} must be a list (positional placeholders) or an object (named ones),"
        f" not {type(value).__name__}"
    )


def _per_query(value: Any, count: int) -> list[Any]:
    if value is None:
        return [None] * count
    if not isinstance(value, list) or len(value) != count:
        raise DatabaseFailure(
            f"params of a transaction: give one entry per query ({count}), each a list, an"
            " object or null"
        )
    return [_params(item, f"params[{i}]") for i, item in enumerate(value)]


def _adapter(connection: Connection) -> Adapter:
    if connection.scheme == "sqlite":
        from .sqlite_backend import SqliteAdapter

        return SqliteAdapter(connection)
    if connection.scheme == "duckdb":
        from .duckdb_backend import DuckdbAdapter

        return DuckdbAdapter(connection)
    from .postgres_backend import PostgresAdapter

    return PostgresAdapter(connection)


async def _execute(connection: Connection, plan: Plan, ctx: TaskContext) -> TaskResult:
    loop = asyncio.get_running_loop()

    def sink(stream: str) -> Callable[[str], None]:
        def emit(line: str) -> None:  # called from the worker thread
            loop.call_soon_threadsafe(ctx.emit_line, stream, connection.scrub(line))

        return emit

    db = _adapter(connection)
    try:
        result, outputs = await _in_thread(lambda: _work(db, plan, sink), db, ctx.kill_grace)
    except (DatabaseFailure, StatementError):
        raise
    except ImportError as exc:
        raise DatabaseFailure(f"{connection.scheme} connections need {exc.name}") from None
    except Exception as exc:  # a driver error nobody expected: keep the password out of it
        for line in traceback.format_exc().splitlines():
            ctx.emit_line("stderr", connection.scrub(redact(line)))
        raise DatabaseFailure(
            f"database error: {type(exc).__name__}: {one_line(redact(str(exc)))}"
        ) from None
    return TaskResult(exit_code=0, result=result, outputs=outputs)


def _work(db: Adapter, plan: Plan, sink: Callable[[str], Callable[[str], None]]) -> Answer:
    """The whole operation, in the worker thread: connect, run, close."""
    log = sink("stdout")
    started = time.monotonic()
    db.connect()
    try:
        db.check()
        log(f"connected to {db.connection.display} in {ms_since(started)}")
        return OPERATIONS[plan.operation](db, plan, log, sink("stderr"))
    finally:
        db.close()


async def _in_thread(work: Callable[[], T], db: Adapter, grace: float) -> T:
    """``work()`` in a thread; on cancellation interrupt its statement, let it end, re-raise."""
    future = asyncio.ensure_future(asyncio.to_thread(work))
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        await _stop(future, db, grace)
        raise


async def _stop(future: asyncio.Future[Any], db: Adapter, grace: float) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + grace
    # Again and again: a statement that started just after an interrupt must be stopped too.
    while not future.done() and loop.time() < deadline:
        db.interrupt()
        await asyncio.wait({future}, timeout=0.1)
    if future.done():
        _consume(future)
    else:  # stuck (connecting): it closes its connection when it gets there
        future.add_done_callback(_consume)


def _consume(future: asyncio.Future[Any]) -> None:
    # The interrupted statement's error (or a late result) is expected: retrieve and drop it.
    if not future.cancelled():
        future.exception()
