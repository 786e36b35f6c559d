"""The one state machine shared by runs and tasks."""

from __future__ import annotations

from enum import Enum


class State(str, Enum):
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    CANCELLED = "cancelled"
    SKIPPED = "skipped"
    CRASHED = "crashed"

    def __str__(self) -> str:
        return self.value

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL

    @property
    def is_failure(self) -> bool:
        """Ended badly: dependents of such a task do not run (unless they opt in)."""
        return self in FAILURES


TERMINAL = frozenset(
    {State.SUCCEEDED, State.FAILED, State.TIMED_OUT, State.CANCELLED, State.SKIPPED, State.CRASHED}
)
FAILURES = frozenset({State.FAILED, State.TIMED_OUT, State.CANCELLED, State.CRASHED})
