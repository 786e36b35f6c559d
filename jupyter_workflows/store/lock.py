"""The inter-process lock every index operation holds while the DuckDB file is open."""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path
from types import TracebackType

from ..errors import StoreError, StoreUnavailable

DEFAULT_TIMEOUT = 30.0


class IndexLock:
    """An exclusive ``flock`` on a lock file, waited for up to ``timeout`` seconds.

    DuckDB refuses a second process outright while one has the file open (no waiting), so
    every open of the index, reads included, happens under this lock. flock locks belong to
    an open file description, so two threads of one process exclude each other as well.
    """

    def __init__(self, path: Path, timeout: float = DEFAULT_TIMEOUT):
        self.path = path
        self.timeout = timeout
        self._fd: int | None = None

    def acquire(self) -> None:
        """Block until the lock is ours; raise StoreError after ``timeout`` seconds, and
        StoreUnavailable when the lock file cannot be opened (a folder in its place...)."""
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise StoreUnavailable(
                self.path.parent,
                self.path,
                f"cannot open the lock file {self.path}: [Errno {exc.errno}] {exc.strerror}",
            ) from exc
        deadline = time.monotonic() + self.timeout
        pause = 0.001
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    os.close(fd)
                    raise StoreError(
                        f"timed out after {self.timeout:g} s waiting for the store lock {self.path}"
                    ) from None
                # flock has no timeout of its own: poll, backing off so waiters stay cheap.
                time.sleep(pause)
                pause = min(pause * 2, 0.02)
        self._fd = fd

    def release(self) -> None:
        """Release the lock (closing the descriptor drops it); safe to call twice."""
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)

    def __enter__(self) -> IndexLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()
