"""What can go wrong in a database task, as the task reports it."""

from __future__ import annotations


class DatabaseFailure(Exception):
    """A failure the user can act on; its text becomes the task's error (after scrubbing)."""


class StatementError(Exception):
    """The database refused a statement: ``str()`` is its message, ``line`` where (1-based)."""

    def __init__(self, message: str, line: int | None = None):
        super().__init__(message)
        self.line = line

    def located(self) -> str:
        """The message, with ``(line N)`` when the line is known."""
        return str(self) if self.line is None else f"{self} (line {self.line})"
