"""``History``: the reads the alert rules make of a workflow's past runs.

Two things answer them: the store's reads (``store.view.Reads``, over the DuckDB index) and a
workflow's recent-runs file (``store.recent.RecentRuns``, what a runner keeps without DuckDB).
"""

from __future__ import annotations

from typing import Protocol


class History(Protocol):
    """A workflow's finished runs, as the rules need them."""

    def finished_statuses(self, workflow: str, *, up_to: str, limit: int) -> list[str]:
        """Statuses of the last ``limit`` finished runs up to ``up_to`` (included), newest
        first."""
        ...

    def success_durations(self, workflow: str, *, before: str, limit: int) -> list[float]:
        """Durations (ms) of the last ``limit`` successful runs before ``before``, newest
        first."""
        ...
