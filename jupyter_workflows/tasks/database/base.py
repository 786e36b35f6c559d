"""The one interface the database operations use, whatever the backend.

An ``Adapter`` wraps one blocking DB-API connection. Every method but ``interrupt`` runs in
the worker thread that called ``connect``; ``interrupt`` is called from the event loop (another
thread) to stop the running statement when the task is cancelled or times out.

Driver exceptions never leave an adapter's ``run``/``script`` raw: they become
``StatementError`` (the database's message, one line, with the line number when known) and
the operations turn that into a ``DatabaseFailure`` naming the query or file.
"""

from __future__ import annotations

import base64
import datetime as dt
import math
import uuid
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from .failures import DatabaseFailure, StatementError

if TYPE_CHECKING:
    from .urls import Connection

Params = Sequence[Any] | Mapping[str, Any] | None


class Interrupted(Exception):
    """The attempt was cancelled before or while a statement ran."""


@dataclass
class Outcome:
    """What one statement gave: rows (when it returns rows) or the number of rows it changed."""

    columns: list[str] | None
    rows: list[Sequence[Any]]
    rowcount: int

    @property
    def returns_rows(self) -> bool:
        return self.columns is not None

    def records(self) -> list[dict[str, Any]]:
        """Rows as objects (column name -> JSON-able value); a repeated name keeps the last."""
        columns = self.columns or []
        return [{c: to_json(v) for c, v in zip(columns, row, strict=False)} for row in self.rows]


class Adapter(ABC):
    """One backend. Subclasses implement connect/run/script (and _interrupt where the driver
    has no ``interrupt()``)."""

    scheme: ClassVar[str]
    # The driver's placeholder for the migrations table's own statements ('?' or '%s').
    mark: ClassVar[str] = "?"
    begin_sql: ClassVar[str] = "BEGIN"

    def __init__(self, connection: Connection):
        self.connection = connection
        self.cancelled = False
        self.conn: Any = None  # the driver's connection, once connected

    @abstractmethod
    def connect(self) -> None:
        """Open the connection in autocommit mode; raise DatabaseFailure when it cannot."""

    @abstractmethod
    def run(self, sql: str, params: Params = None) -> Outcome:
        """Execute one statement; raises StatementError when the database refuses it."""

    @abstractmethod
    def script(self, sql: str) -> None:
        """Execute a multi-statement text without parameters (a migration file)."""

    def _interrupt(self) -> None:
        """Stop the running statement, from another thread; a no-op when none runs.

        SQLite and DuckDB connections have ``interrupt()``; PostgreSQL overrides this."""
        if self.conn is not None:
            self.conn.interrupt()

    def close(self) -> None:
        """Close the connection (an open transaction is rolled back by the database)."""
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def interrupt(self) -> None:
        """Called from the event loop: flag the attempt and stop whatever statement runs."""
        self.cancelled = True
        try:
            self._interrupt()
        except Exception:  # noqa: BLE001 - a closing connection cannot be interrupted, fine
            pass

    def check(self) -> None:
        """Raise Interrupted once the attempt was cancelled (between statements)."""
        if self.cancelled:
            raise Interrupted

    def begin(self) -> None:
        self.run(self.begin_sql)

    def commit(self) -> None:
        self.run("COMMIT")

    def rollback(self) -> None:
        """Roll back the open transaction; quiet when there is none (or it is already gone)."""
        try:
            self.run("ROLLBACK")
        except StatementError:
            pass


def check_folder(connection: Connection) -> None:
    """A file database whose folder is missing: say so instead of the driver's riddle."""
    if connection.in_memory:
        return
    folder = Path(connection.target).parent
    if not folder.is_dir():
        raise DatabaseFailure(f"cannot open {connection.display}: folder {folder} does not exist")


def line_at(text: str, index: int) -> int:
    """The 1-based line of ``text`` holding ``index``."""
    return text.count("\n", 0, index) + 1


def first_line(text: str, start: int) -> int:
    """The line of the first non-blank character at or after ``start`` (a statement's line)."""
    rest = text[start:]
    return line_at(text, start + len(rest) - len(rest.lstrip()))


def one_line(message: str) -> str:
    """The first line of a driver's message, whitespace collapsed."""
    first = message.strip().splitlines()[0] if message.strip() else "unknown error"
    return " ".join(first.split())


def to_json(value: Any) -> Any:
    """A database value as JSON data: dates as ISO text, decimals as numbers when exact.

    Decimal -> int when integral, float when the float prints the same, else text; intervals
    -> seconds; bytes -> base64 text; UUIDs, addresses and the like -> their text.
    """
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, Decimal):
        return _decimal(value)
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, Mapping):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [to_json(v) for v in value]
    if isinstance(value, uuid.UUID):
        return str(value)
    return str(value)


def _decimal(value: Decimal) -> int | float | str:
    if not value.is_finite():
        return str(value)
    if value == value.to_integral_value():
        return int(value)
    as_float = float(value)
    return as_float if Decimal(repr(as_float)) == value else str(value)
