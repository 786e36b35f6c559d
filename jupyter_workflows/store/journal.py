"""Journals: one append-only JSON-lines file per execution, written by its runner as it goes.

The journal is the source of truth; the DuckDB index is rebuilt from it. This module must stay
light (no duckdb): the runner imports it on the hot path of every run.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import threading
from pathlib import Path
from types import TracebackType
from typing import Any

from ..errors import StoreError, StoreWriteFailed
from ..execution.events import EVENT_TYPES, Event


def encode_line(data: dict[str, Any]) -> bytes:
    """One journal line for ``data``: compact JSON, UTF-8, newline-terminated."""
    text = json.dumps(data, separators=(",", ":"), default=str, ensure_ascii=False)
    # "replace" because a lone surrogate (from surrogateescape-decoded output) cannot be
    # encoded, and one unencodable character must not lose the whole line.
    return (text + "\n").encode("utf-8", "replace")


class JournalWriter:
    """An EventSink appending each event to a journal as one line with a ``seq`` number.

    Each call is one ``os.write`` on an ``O_APPEND`` descriptor: no Python buffering to
    flush and no fsync, so it costs microseconds, and a line is either absent or whole once
    the write returns. ``close`` fsyncs. Opening an existing journal continues its numbering.

    A write that fails (a full disk: ENOSPC) raises ``StoreWriteFailed`` naming the file and
    the errno, after cutting off what it wrote of its line: the journal keeps whole lines only.
    The writer is then ``failed`` and refuses every later event, so the journal never has a
    gap in the middle; a reader ends it as crashed once the runner is gone.
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        self.failed: StoreWriteFailed | None = None
        self._lock = threading.Lock()
        self._seq = 0
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fd: int | None = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        except OSError as exc:
            raise StoreWriteFailed(exc.filename or self.path, exc) from exc
        try:
            if os.fstat(self._fd).st_size:
                self._resume()
        except OSError as exc:
            os.close(self._fd)
            raise StoreWriteFailed(self.path, exc) from exc

    @property
    def seq(self) -> int:
        """The seq number of the last line written."""
        return self._seq

    def __call__(self, event: Event) -> None:
        """Append ``event``; raise StoreWriteFailed if it cannot be written (or an earlier
        event could not), StoreError if the writer is closed."""
        data = event.to_dict()
        with self._lock:  # seq order must match line order if several threads emit
            if self.failed is not None:
                raise self.failed
            if self._fd is None:
                raise StoreError(f"journal {self.path} is closed")
            data["seq"] = self._seq + 1
            try:
                _write_all(self._fd, encode_line(data))
            except OSError as exc:
                self.failed = StoreWriteFailed(self.path, exc)
                raise self.failed from exc
            self._seq += 1

    def close(self) -> None:
        """Flush the journal to disk and close it; calling it again does nothing.

        Raises StoreWriteFailed when the flush fails (the record may not be on disk), unless
        a write had failed already (that failure was raised then).
        """
        with self._lock:
            if self._fd is None:
                return
            fd, self._fd = self._fd, None
        try:
            os.fsync(fd)
        except OSError as exc:
            if self.failed is None:
                self.failed = StoreWriteFailed(self.path, exc)
                raise self.failed from exc
        finally:
            os.close(fd)

    def _resume(self) -> None:
        """Continue after the last line of an existing journal, ending a cut-off line first."""
        assert self._fd is not None
        with open(self.path, "rb") as handle:
            handle.seek(-1, os.SEEK_END)
            ends_cleanly = handle.read(1) == b"\n"
        if not ends_cleanly:
            # The previous writer died mid-line: close that line so ours starts on its own.
            _write_all(self._fd, b"\n")
        self._seq = max((int(d["seq"]) for d in read_journal(self.path)), default=0)

    def __enter__(self) -> JournalWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _write_all(fd: int, data: bytes) -> None:
    """Write every byte; a regular file takes it in one call, the loop is for the odd case.

    On a failure after a short write (a disk that filled up mid-line), the part written is
    cut off again, so that a line is either absent or whole.
    """
    view = memoryview(data)
    written = 0
    try:
        while written < len(data):
            written += os.write(fd, view[written:])
    except OSError:
        if written:
            with contextlib.suppress(OSError):  # shrinking a file needs no space
                os.ftruncate(fd, os.fstat(fd).st_size - written)
        raise


def read_journal(path: Path) -> list[dict[str, Any]]:
    """Every complete line of a journal, in file order.

    A line that does not parse (the last one while its writer is mid-write, or one cut off by a
    crash) is skipped, as is anything without a ``seq``: the same rule the index applies.
    """
    entries = []
    for raw in Path(path).read_bytes().split(b"\n"):
        if not raw.strip():
            continue
        try:
            data = json.loads(raw)
        except ValueError:
            continue
        if isinstance(data, dict) and isinstance(data.get("seq"), int):
            entries.append(data)
    return entries


def read_events(path: Path) -> list[Event]:
    """The journal's lines as typed events (lines of unknown kinds are skipped)."""
    return [_event(d) for d in read_journal(path) if d.get("kind") in EVENT_TYPES]


def _event(data: dict[str, Any]) -> Event:
    """Rebuild one event from its line.

    Not ``events.event_from_dict``: that passes the ``kind`` ClassVar (listed in
    ``__dataclass_fields__``) to the constructor, which rejects it.
    """
    cls = EVENT_TYPES[data["kind"]]
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in data.items() if k in names})
