"""The execution store: per-run journals plus a DuckDB index for history, logs and metrics.

Names are loaded on first use so ``import jupyter_workflows.store`` stays cheap (no duckdb):
the runner only needs ``JournalWriter``.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..project import default_store_path
    from .execution_store import ExecutionStore
    from .journal import JournalWriter, read_journal
    from .models import ExecutionSummary, LogLine

_EXPORTS = {
    "ExecutionStore": "execution_store",
    "ExecutionSummary": "models",
    "LogLine": "models",
    "JournalWriter": "journal",
    "read_journal": "journal",
    "default_store_path": "..project",  # the project owns the layout; kept here for callers
}

__all__ = [
    "ExecutionStore",
    "ExecutionSummary",
    "JournalWriter",
    "LogLine",
    "default_store_path",
    "read_journal",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    relative = module if module.startswith(".") else f".{module}"
    value = getattr(import_module(relative, __name__), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
