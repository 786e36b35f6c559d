"""A standard output that a reader may close: ``workflow run X | head -1``.

When the reader goes, the next write raises BrokenPipeError. Left alone, that error stops the
run (its renderer is an event sink) and is printed again when the interpreter flushes stdout at
exit. Instead the output is silenced and the command carries on: a closed pipe ends what we
show, never what we do, so the run finishes and is recorded as it really ended, and the exit
code is the run's. The file descriptor is pointed at /dev/null, so that flushes by any holder
of the stream (rich, click, the interpreter at exit) succeed quietly.
"""

from __future__ import annotations

import os
import sys
from typing import Any, TextIO


class ClosablePipe:
    """Wraps a text stream; writes after its reader closed it are dropped."""

    def __init__(self, stream: TextIO):
        self._stream = stream
        self.reader_gone = False

    def write(self, text: str) -> int:
        if not self.reader_gone:
            try:
                return self._stream.write(text)
            except BrokenPipeError:
                self._silence()
        return len(text)

    def flush(self) -> None:
        if not self.reader_gone:
            try:
                self._stream.flush()
            except BrokenPipeError:
                self._silence()

    def _silence(self) -> None:
        self.reader_gone = True
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self._stream.fileno())
            os.close(devnull)
        except (OSError, ValueError):
            pass  # no descriptor to redirect (a test's StringIO): dropping writes is enough

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def guard_stdout() -> None:
    """Make ``sys.stdout`` survive its reader closing the pipe (once per process)."""
    if not isinstance(sys.stdout, ClosablePipe) and sys.stdout is not None:
        sys.stdout = ClosablePipe(sys.stdout)  # type: ignore[assignment]
