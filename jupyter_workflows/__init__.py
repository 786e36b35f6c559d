"""jupyter-workflows: load, validate and run workflows of tasks, from Jupyter or the shell.

The names below load on first use, so ``import jupyter_workflows`` costs next to nothing (the
CLI, the notebook extension and cron runs import only what they use).
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from .engine.orchestrator import WorkflowOrchestrator
    from .errors import (
        AmbiguousExecutionId,
        DefinitionError,
        ExecutionNotFound,
        ExpressionError,
        Problem,
        StoreError,
        TaskFailed,
        TaskTypeNotImplemented,
        ValidationError,
        WorkflowError,
    )
    from .frames import history, sql
    from .loader import ValidationReport, load_workflow, validate_file, validate_text
    from .model import Workflow, json_schema
    from .monitor import WorkflowMonitor
    from .recording import record
    from .records import Attempt, Execution, TaskRecord
    from .states import State
    from .store import ExecutionStore

_EXPORTS = {
    "WorkflowOrchestrator": ".engine.orchestrator",
    "ExecutionStore": ".store",
    "WorkflowMonitor": ".monitor",
    "history": ".frames",
    "sql": ".frames",
    "record": ".recording",
    "Workflow": ".model",
    "json_schema": ".model",
    "load_workflow": ".loader",
    "validate_file": ".loader",
    "validate_text": ".loader",
    "ValidationReport": ".loader",
    "Execution": ".records",
    "TaskRecord": ".records",
    "Attempt": ".records",
    "State": ".states",
    "WorkflowError": ".errors",
    "DefinitionError": ".errors",
    "ValidationError": ".errors",
    "ExpressionError": ".errors",
    "TaskTypeNotImplemented": ".errors",
    "TaskFailed": ".errors",
    "StoreError": ".errors",
    "ExecutionNotFound": ".errors",
    "AmbiguousExecutionId": ".errors",
    "Problem": ".errors",
}

__all__ = [
    "__version__",
    "AmbiguousExecutionId",
    "Attempt",
    "DefinitionError",
    "Execution",
    "ExecutionNotFound",
    "ExecutionStore",
    "ExpressionError",
    "Problem",
    "State",
    "StoreError",
    "TaskFailed",
    "TaskRecord",
    "TaskTypeNotImplemented",
    "ValidationError",
    "ValidationReport",
    "Workflow",
    "WorkflowError",
    "WorkflowMonitor",
    "WorkflowOrchestrator",
    "history",
    "json_schema",
    "load_workflow",
    "record",
    "sql",
    "validate_file",
    "validate_text",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'jupyter_workflows' has no attribute '{name}'")
    value = getattr(import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext jupyter_workflows``: register the ``%workflow`` magics."""
    from .jupyter.magics import load_ipython_extension as load

    load(ipython)
