"""PostgreSQL through psycopg 3.

Parameters use psycopg's styles: ``%s`` with a list, ``%(name)s`` with an object (a literal
``%`` in a query with parameters is written ``%%``). Objects bind as jsonb, lists as arrays.
A text without parameters may hold several statements (a migration file).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from .base import Adapter, DatabaseFailure, Outcome, Params, StatementError, one_line

_LINE_RE = re.compile(r"^LINE (\d+):", re.MULTILINE)
CONNECT_TIMEOUT = 10  # seconds, unless the URL sets connect_timeout


class PostgresAdapter(Adapter):
    scheme = "postgresql"
    mark = "%s"

    def connect(self) -> None:
        import psycopg

        options: dict[str, Any] = {"autocommit": True}
        if "connect_timeout" not in self.connection.target:
            options["connect_timeout"] = CONNECT_TIMEOUT
        try:
            self.conn = psycopg.connect(self.connection.target, **options)
        except psycopg.Error as exc:
            raise DatabaseFailure(
                f"cannot connect to {self.connection.display}: {connect_reason(exc)}"
            ) from None

    def run(self, sql: str, params: Params = None) -> Outcome:
        import psycopg

        try:
            with self.conn.cursor() as cursor:
                cursor.execute(sql, _bindable(params) if params is not None else None)
                while cursor.nextset():  # several statements: the last one's answer counts
                    pass
                if cursor.description is None:
                    return Outcome(None, [], max(cursor.rowcount, 0))
                rows = cursor.fetchall()
                return Outcome([c.name for c in cursor.description], rows, len(rows))
        except psycopg.Error as exc:
            raise _statement_error(exc) from None

    def script(self, sql: str) -> None:
        self.check()
        self.run(sql)

    def _interrupt(self) -> None:
        if self.conn is not None:
            self.conn.cancel()


def libpq_passwords(url: str) -> set[str]:
    """The password as libpq reads ``url`` (it may parse a malformed URL differently)."""
    try:
        from psycopg.conninfo import conninfo_to_dict

        password = conninfo_to_dict(url).get("password")
    except Exception:  # noqa: BLE001 - an unparsable URL fails at connect, with its message
        return set()
    return {str(password)} if password else set()


def connect_reason(exc: Exception) -> str:
    """'connection refused', 'password authentication failed for user "x"', ..."""
    first = one_line(str(exc))
    reason = first.rsplit(" failed: ", 1)[-1]
    reason = re.sub(r"^(FATAL|ERROR):\s+", "", reason)
    if reason[:1].isupper() and reason[1:2].islower():
        reason = reason[0].lower() + reason[1:]
    return reason


def _statement_error(exc: Any) -> StatementError:
    diag = getattr(exc, "diag", None)
    message = getattr(diag, "message_primary", None) or one_line(str(exc))
    detail = getattr(diag, "message_detail", None)
    if detail:
        message = f"{message}: {one_line(detail).rstrip('.')}"
    line = _LINE_RE.search(str(exc))
    return StatementError(message, int(line.group(1)) if line else None)


def _bindable(params: Params) -> Any:
    from psycopg.types.json import Jsonb

    def value(item: Any) -> Any:
        return Jsonb(item) if isinstance(item, Mapping) else item

    if isinstance(params, Mapping):
        return {key: value(item) for key, item in params.items()}
    return [value(item) for item in params or []]
