"""DuckDB through its Python package.

Parameters use DuckDB's styles: ``?`` or ``$1`` with a list, ``$name`` with an object (every
key must be used). Lists and objects bind as DuckDB LISTs and STRUCTs.
"""

from __future__ import annotations

import re

from .base import (
    Adapter,
    DatabaseFailure,
    Outcome,
    Params,
    StatementError,
    check_folder,
    first_line,
    line_at,
    one_line,
)

_LINE_RE = re.compile(r"^LINE (\d+):", re.MULTILINE)
# Statements DuckDB answers with one "Count" column: the number of rows they changed.
_ROW_RETURNING = {"SELECT", "EXPLAIN", "PRAGMA", "CALL", "EXECUTE", "RELATION", "LOGICAL_PLAN"}


class DuckdbAdapter(Adapter):
    scheme = "duckdb"
    begin_sql = "BEGIN TRANSACTION"

    def connect(self) -> None:
        import duckdb

        check_folder(self.connection)
        try:
            self.conn = duckdb.connect(self.connection.target)
        except duckdb.Error as exc:
            raise DatabaseFailure(
                f"cannot open {self.connection.display}: {one_line(str(exc))}"
            ) from None

    def run(self, sql: str, params: Params = None) -> Outcome:
        import duckdb

        try:
            if params is None:
                self.conn.execute(sql)
            else:
                self.conn.execute(sql, params)
            columns = [d[0] for d in self.conn.description or []]
            if columns == ["Count"] and not self._returns_rows(sql):
                counted = self.conn.fetchall()
                return Outcome(None, [], int(counted[0][0]) if counted else 0)
            if not self.conn.description:
                return Outcome(None, [], 0)
            rows = self.conn.fetchall()
            return Outcome(columns, rows, len(rows))
        except duckdb.Error as exc:
            raise _statement_error(exc) from None

    def _returns_rows(self, sql: str) -> bool:
        statements = self.conn.extract_statements(sql)
        return bool(statements) and statements[-1].type.name in _ROW_RETURNING

    def script(self, sql: str) -> None:
        import duckdb

        try:
            statements = [st.query for st in self.conn.extract_statements(sql)]
        except duckdb.Error as exc:  # a parse error anywhere: nothing ran
            raise _statement_error(exc) from None
        # One by one (each is an exact slice of the text) so an error knows its line.
        position = 0
        for text in statements:
            self.check()
            start = sql.find(text, position)
            position = start + len(text) if start >= 0 else position
            try:
                self.conn.execute(text)
            except duckdb.Error as exc:
                raise _statement_error(exc, sql, start) from None


def _statement_error(exc: Exception, sql: str = "", start: int = -1) -> StatementError:
    """The error with its line in ``sql``: DuckDB counts LINE within the statement it ran."""
    text = str(exc)
    found = _LINE_RE.search(text)
    if start < 0:
        return StatementError(one_line(text), int(found.group(1)) if found else None)
    if found:
        return StatementError(one_line(text), line_at(sql, start) + int(found.group(1)) - 1)
    return StatementError(one_line(text), first_line(sql, start))
