"""Watching workflows over time: health reports (and, later, alert rules) read from the store.

``WorkflowMonitor`` loads on first use so importing this package stays cheap.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .health import WorkflowMonitor

__all__ = ["WorkflowMonitor"]


def __getattr__(name: str) -> Any:
    if name != "WorkflowMonitor":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = import_module(".health", __name__).WorkflowMonitor
    globals()[name] = value
    return value
