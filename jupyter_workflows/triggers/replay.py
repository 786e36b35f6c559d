"""The webhook server's memory of requests already run, shared by every server on one store.

An accepted request is remembered under its keys (its hook path with its delivery id, and for a
signed request a hash of the signature it carried) with the run it started and until when.
``claim`` is one atomic step across processes: either a key is already remembered, and the
caller answers with that run, or every key is remembered as the caller's new run. So two
``workflow serve`` processes on one project (behind one load balancer) never both run a request.

The record is ``<store>/webhooks/deliveries.jsonl``, one JSON line per claim (``{"key",
"execution_id", "workflow", "expires"}``) or release (``{"key", "released": <execution id>}``),
each written and fsync'd before the request is answered; the first line names the file
(``{"replay_record": <random id>}``). Every claim holds an exclusive flock on
``deliveries.lock`` (``store.lock.IndexLock``) while it reads what other processes appended
since its last look (all of it when the file is another one), decides and appends. Expired
entries are dropped from memory once a minute, and from the file when it holds more than twice
the live entries (and at least ``min_lines``): it is rewritten with the live ones and
atomically replaced; the other processes see a file of another name and read it whole. A line
torn by a crash is skipped; a line without ``expires`` (written before entries had one) is kept
for a day from when it is read.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

from ..store.lock import IndexLock

LOCK_TIMEOUT = 5.0
PURGE_EVERY = 60.0  # seconds between drops of expired entries from memory
MIN_LINES = 1024  # the file is never compacted below this many lines
_UNDATED_LIFETIME = 86400.0

Clock = Callable[[], float]


class ReplayRecord:
    """Keys of requests already run, each with its run and expiry (``path`` None: memory only).

    Not thread-safe: use from one thread (the server's event loop); other processes are
    excluded by the lock. ``claim`` and ``release`` raise ``StoreError`` when the lock cannot
    be had within ``lock_timeout`` and ``OSError`` when the file cannot be read or written: the
    caller then refuses the request rather than risk running a replay.
    """

    def __init__(
        self,
        path: Path | None,
        *,
        clock: Clock = time.time,
        lock_timeout: float = LOCK_TIMEOUT,
        min_lines: int = MIN_LINES,
    ):
        self.path = path
        self.clock = clock
        self.lock_timeout = lock_timeout
        self.min_lines = min_lines
        self._entries: dict[str, dict[str, Any]] = {}
        self._file_id: tuple[int, int] | None = None  # (device, inode) of the file read
        self._header: bytes | None = None  # its first line, which names it (an inode is reused)
        self._offset = 0  # bytes of it read
        self._lines = 0  # lines in it
        self._torn = False  # it ends without a newline: the next write starts a new line
        self._next_purge = 0.0

    def claim(
        self, keys: Iterable[str], *, execution_id: str, workflow: str, expires: float
    ) -> dict[str, Any] | None:
        """The entry (``key``, ``execution_id``, ``workflow``, ``expires``) of the first of
        ``keys`` still remembered, and nothing is written; or None once every key is
        remembered as ``execution_id`` until ``expires`` (Unix seconds)."""
        keys = list(keys)
        with self._locked():
            self._catch_up()
            now = self.clock()
            for key in keys:
                entry = self._entries.get(key)
                if entry is not None and entry["expires"] > now:
                    return {"key": key, **entry}
            fields = {"execution_id": execution_id, "workflow": workflow, "expires": expires}
            self._append([{"key": key, **fields} for key in keys])
            self._tidy(now)
        return None

    def release(self, keys: Iterable[str], execution_id: str) -> None:
        """Forget ``keys`` if they are still held by ``execution_id`` (its run never started)."""
        with self._locked():
            self._catch_up()
            self._append([{"key": key, "released": execution_id} for key in keys])

    def _locked(self) -> AbstractContextManager[Any]:
        if self.path is None:
            return nullcontext()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        return IndexLock(self.path.with_suffix(".lock"), self.lock_timeout)

    def _catch_up(self) -> None:
        """Read what was appended since the last look (the whole file when it was replaced)."""
        if self.path is None:
            return
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            self._reset(None)
            return
        with os.fdopen(fd, "rb") as file:
            status = os.fstat(fd)
            file_id = (status.st_dev, status.st_ino)
            known = file_id == self._file_id and status.st_size >= self._offset
            if known and self._header is not None:
                known = os.pread(fd, len(self._header), 0) == self._header
            if not known:
                self._reset(file_id)
            file.seek(self._offset)
            data = file.read()
        if not data:
            return
        if self._offset == 0:
            first, newline, _ = data.partition(b"\n")
            if newline and first.startswith(b'{"replay_record"'):
                self._header = first + newline
        self._offset += len(data)
        self._torn = not data.endswith(b"\n")
        now = self.clock()
        for line in data.split(b"\n"):
            if line.strip():
                self._lines += 1
                self._apply(line, now)

    def _reset(self, file_id: tuple[int, int] | None) -> None:
        self._entries.clear()
        self._file_id = file_id
        self._header = None
        self._offset = self._lines = 0
        self._torn = False

    def _apply(self, line: bytes, now: float) -> None:
        try:
            record = json.loads(line)
            key = record["key"]
            if "released" in record:
                if self._entries.get(key, {}).get("execution_id") == record["released"]:
                    del self._entries[key]
                return
            expires = record.get("expires", now + _UNDATED_LIFETIME)
            entry = {
                "execution_id": str(record["execution_id"]),
                "workflow": str(record["workflow"]),
                "expires": float(expires),
            }
        except (ValueError, KeyError, TypeError, AttributeError):
            return  # a line torn by a crash, or not ours: the rest still counts
        self._entries[str(key)] = entry

    def _append(self, records: list[dict[str, Any]]) -> None:
        now = self.clock()
        lines = [json.dumps(record).encode() + b"\n" for record in records]
        if self.path is not None:
            data = (b"\n" if self._torn else b"") + b"".join(lines)
            if self._offset == 0:  # a new (or empty) file: name it first
                self._header = _new_header()
                data = self._header + data
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                _write_all(fd, data)
                os.fsync(fd)  # a claim lost to a power cut would let its replay run
                status = os.fstat(fd)
            finally:
                os.close(fd)
            # We hold the lock and had read to the end: the file is what we know plus this.
            self._file_id = (status.st_dev, status.st_ino)
            self._offset = status.st_size
            self._lines += data.count(b"\n")
            self._torn = False
        for line in lines:
            self._apply(line, now)

    def _tidy(self, now: float) -> None:
        """Drop expired entries from memory (once a minute) and from a file mostly expired."""
        if now >= self._next_purge:
            self._drop_expired(now)
        if self.path is not None and self._lines > max(self.min_lines, 2 * len(self._entries)):
            self._drop_expired(now)
            self._rewrite(self.path)

    def _drop_expired(self, now: float) -> None:
        self._entries = {k: e for k, e in self._entries.items() if e["expires"] > now}
        self._next_purge = now + PURGE_EVERY

    def _rewrite(self, path: Path) -> None:
        temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        header = _new_header()
        data = header + b"".join(
            json.dumps({"key": key, **entry}).encode() + b"\n"
            for key, entry in self._entries.items()
        )
        with open(temporary, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
        status = os.stat(path)
        self._file_id = (status.st_dev, status.st_ino)
        self._offset = status.st_size
        self._header = header
        self._lines = len(self._entries) + 1
        self._torn = False


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _new_header() -> bytes:
    return json.dumps({"replay_record": uuid.uuid4().hex}).encode() + b"\n"
