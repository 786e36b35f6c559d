"""The three database operations, written once against ``Adapter``; they run in a worker thread.

Each returns ``(result, outputs)`` or raises ``DatabaseFailure`` naming the query or file.
``log(line)`` and ``warn(line)`` hand lines to the event loop (they are thread-safe).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .base import Adapter, DatabaseFailure, Params, StatementError

Log = Callable[[str], None]
Answer = tuple[Any, dict[str, Any]]

TABLE = "jupyter_workflows_migrations"
CREATE_TABLE = (
    f"CREATE TABLE IF NOT EXISTS {TABLE} "
    "(name TEXT PRIMARY KEY, checksum TEXT NOT NULL, applied_at TIMESTAMP NOT NULL)"
)
# PostgreSQL: concurrent migrators of one database take turns (a transaction-scoped lock).
PG_MIGRATION_LOCK = "SELECT pg_advisory_xact_lock(7210946238521)"


@dataclass
class Plan:
    """A rendered, checked database task: everything the worker thread needs."""

    operation: str
    query: str = ""
    params: Params = None
    queries: Sequence[str] = ()
    query_params: Sequence[Params] = ()  # one entry per query of a transaction
    migrations: Path | None = None
    transactional: bool = True  # rollback_on_failure


def ms_since(started: float) -> str:
    elapsed = (time.monotonic() - started) * 1000
    return f"{elapsed:.1f} ms" if elapsed < 10 else f"{elapsed:.0f} ms"


def _rows(n: int) -> str:
    return f"{n} row" if n == 1 else f"{n} rows"


def run_query(db: Adapter, plan: Plan, log: Log, warn: Log) -> Answer:
    """One statement: its rows as objects, or ``{"rowcount": n}`` when it returns none."""
    started = time.monotonic()
    try:
        outcome = db.run(plan.query, plan.params)
    except StatementError as exc:
        raise DatabaseFailure(f"query failed: {exc.located()}") from None
    if outcome.returns_rows:
        log(f"query returned {_rows(outcome.rowcount)} in {ms_since(started)}")
        return outcome.records(), {"rows": outcome.rowcount}
    log(f"query changed {_rows(outcome.rowcount)} in {ms_since(started)}")
    return {"rowcount": outcome.rowcount}, {"rowcount": outcome.rowcount}


def run_transaction(db: Adapter, plan: Plan, log: Log, warn: Log) -> Answer:
    """Every query in one transaction: all of them or none (per-query row counts)."""
    total = len(plan.queries)
    counts: list[int] = []
    if plan.transactional:
        db.begin()
    try:
        for index, (sql, params) in enumerate(zip(plan.queries, plan.query_params, strict=True), 1):
            db.check()
            started = time.monotonic()
            try:
                outcome = db.run(sql, params)
            except StatementError as exc:
                raise DatabaseFailure(
                    f"query {index} of {total} failed: {exc.located()}; "
                    + _undone(plan.transactional, index, total)
                ) from None
            counts.append(outcome.rowcount)
            log(f"query {index}/{total}: {_rows(outcome.rowcount)} in {ms_since(started)}")
        if plan.transactional:
            _commit(db)
    except BaseException:
        if plan.transactional:
            db.rollback()
        raise
    log(f"committed {total} {'query' if total == 1 else 'queries'}")
    return counts, {"queries": total, "rowcount": sum(counts)}


def _undone(transactional: bool, index: int, total: int) -> str:
    if transactional:
        return f"rolled back all {total} queries"
    if index == 1:
        return "nothing was committed"
    return f"queries 1-{index - 1} stay committed (rollback_on_failure is false)"


def _commit(db: Adapter) -> None:
    try:
        db.commit()
    except StatementError as exc:
        raise DatabaseFailure(f"commit failed: {exc}") from None


def run_migrations(db: Adapter, plan: Plan, log: Log, warn: Log) -> Answer:
    """Apply the folder's new ``.sql`` files in name order, each in its own transaction."""
    assert plan.migrations is not None
    files = migration_files(plan.migrations)
    if not files:
        log(f"no .sql files in {plan.migrations}: nothing to apply")
        return {"applied": [], "already_applied": []}, {"applied": 0}
    _in_transaction(db, plan.transactional, lambda: db.run(CREATE_TABLE))
    applied = _applied(db)
    done: list[str] = []
    skipped: list[str] = []
    for path in files:
        db.check()
        data = path.read_bytes()
        checksum = hashlib.sha256(data).hexdigest()
        if path.name in applied:
            skipped.append(path.name)
            if applied[path.name][0] != checksum:
                warn(
                    f"warning: {path.name} changed since it was applied at"
                    f" {applied[path.name][1]} (checksum differs); not applied again"
                )
            continue
        started = time.monotonic()
        if _apply(db, plan.transactional, path, _text(path, data), checksum, done):
            done.append(path.name)
            log(f"applied {path.name} in {ms_since(started)}")
        else:
            skipped.append(path.name)
    if skipped:
        log(f"{len(skipped)} already applied, {len(done)} applied now")
    return {"applied": done, "already_applied": skipped}, {"applied": len(done)}


def migration_files(folder: Path) -> list[Path]:
    if not folder.exists():
        raise DatabaseFailure(f"migrations folder {folder} does not exist")
    if not folder.is_dir():
        raise DatabaseFailure(f"migrations path {folder} is not a folder")
    files = [p for p in folder.iterdir() if p.suffix.lower() == ".sql" and p.is_file()]
    return sorted(files, key=lambda p: p.name)


def _text(path: Path, data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DatabaseFailure(f"migration {path.name} is not UTF-8 text: {exc.reason}") from None


def _applied(db: Adapter) -> dict[str, tuple[str, str]]:
    outcome = db.run(f"SELECT name, checksum, applied_at FROM {TABLE}")
    return {str(name): (str(checksum), str(at)) for name, checksum, at in outcome.rows}


def _in_transaction(db: Adapter, transactional: bool, work: Callable[[], Any]) -> Any:
    if not transactional:
        return work()
    db.begin()
    try:
        if db.scheme == "postgresql":
            db.run(PG_MIGRATION_LOCK)
        value = work()
        db.commit()
        return value
    except BaseException:
        db.rollback()
        raise


def _apply(
    db: Adapter, transactional: bool, path: Path, sql: str, checksum: str, before: list[str]
) -> bool:
    """Run one file and record it; False when another run applied it meanwhile."""
    mark = db.mark
    record = f"INSERT INTO {TABLE} (name, checksum, applied_at) VALUES ({mark}, {mark}, {mark})"
    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")

    def work() -> bool:
        if transactional and path.name in _applied(db):
            return False
        try:
            db.script(sql)
        except StatementError as exc:
            raise DatabaseFailure(_failed(path.name, exc, transactional, before)) from None
        db.run(record, [path.name, checksum, now])
        return True

    return bool(_in_transaction(db, transactional, work))


def _failed(name: str, exc: StatementError, transactional: bool, before: list[str]) -> str:
    undone = (
        "rolled back"
        if transactional
        else "statements before the error stay committed (rollback_on_failure is false)"
    )
    kept = f"; applied before it in this run: {', '.join(before)}" if before else ""
    return f"migration {name} failed: {exc.located()}; {undone}{kept}"


OPERATIONS: dict[str, Callable[[Adapter, Plan, Log, Log], Answer]] = {
    "query": run_query,
    "transaction": run_transaction,
    "migration": run_migrations,
}
