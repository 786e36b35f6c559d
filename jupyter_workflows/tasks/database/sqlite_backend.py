"""SQLite through the standard library's ``sqlite3``.

Parameters use sqlite3's styles: ``?`` with a list, ``:name`` with an object. Lists and objects
passed as values are bound as JSON text (SQLite's json functions read it).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Mapping
from typing import Any

from .base import (
    Adapter,
    DatabaseFailure,
    Outcome,
    Params,
    StatementError,
    check_folder,
    first_line,
)


class SqliteAdapter(Adapter):
    scheme = "sqlite"
    # IMMEDIATE takes the write lock up front: a migration's check-then-apply is atomic across
    # processes, and two writers wait (busy timeout) instead of failing on a lock upgrade.
    begin_sql = "BEGIN IMMEDIATE"

    conn: sqlite3.Connection | None = None

    def connect(self) -> None:
        check_folder(self.connection)
        try:
            # isolation_level=None: no implicit BEGIN; the operations issue BEGIN/COMMIT.
            self.conn = sqlite3.connect(self.connection.target, isolation_level=None, timeout=10)
        except sqlite3.Error as exc:
            raise DatabaseFailure(f"cannot open {self.connection.display}: {exc}") from None

    def run(self, sql: str, params: Params = None) -> Outcome:
        assert self.conn is not None
        try:
            if params is None:
                cursor = self.conn.execute(sql)
            else:
                cursor = self.conn.execute(sql, _bindable(params))
            if cursor.description is None:
                return Outcome(None, [], max(cursor.rowcount, 0))
            columns = [d[0] for d in cursor.description]
            rows = cursor.fetchall()
            return Outcome(columns, rows, len(rows))
        except (sqlite3.Error, sqlite3.Warning) as exc:
            raise StatementError(str(exc)) from None

    def script(self, sql: str) -> None:
        # Statement by statement inside the caller's transaction: executescript() would COMMIT
        # the open transaction first, so a failing second statement could not undo the first.
        for line, statement in split_statements(sql):
            self.check()
            try:
                self.run(statement)
            except StatementError as exc:
                raise StatementError(str(exc), line) from None


def split_statements(sql: str) -> Iterator[tuple[int, str]]:
    """(first line, statement) for each complete statement, as SQLite itself would end them.

    ``sqlite3.complete_statement`` knows string literals, comments and trigger bodies, so a ';'
    inside them does not end a statement.
    """
    start = 0
    for index, char in enumerate(sql):
        if char == ";" and sqlite3.complete_statement(sql[start : index + 1]):
            yield _located(sql, start, index + 1)
            start = index + 1
    if sql[start:].strip():
        yield _located(sql, start, len(sql))


def _located(sql: str, start: int, end: int) -> tuple[int, str]:
    return first_line(sql, start), sql[start:end]


def _bindable(params: Params) -> Any:
    def value(item: Any) -> Any:
        return json.dumps(item) if isinstance(item, (Mapping, list, tuple)) else item

    if isinstance(params, Mapping):
        return {key: value(item) for key, item in params.items()}
    return [value(item) for item in params or []]
