"""jupyter-workflows: load, validate and run workflows of tasks, from Jupyter or the shell.

The names below load on first use, so ``import jupyter_workflows`` costs next to nothing (the
CLI, the notebook extension and cron runs import only what they use).
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from .definition.loader import ValidationReport, load_workflow, validate_file, validate_text
    from .definition.model import Workflow, json_schema
    from .engine.orchestrator import WorkflowOrchestrator
    from .errors import (
        AmbiguousExecutionId,
        DefinitionError,
        ExecutionNotFound,
        ExecutionNotRunning,
        ExpressionError,
        Problem,
        ResumeRefused,
        SecretError,
        StoreError,
        StoreUnavailable,
        StoreWriteFailed,
        TaskFailed,
        TaskFailure,
        TaskTypeNotImplemented,
        ValidationError,
        WorkflowError,
        WorkflowFailed,
    )
    from .execution.records import Attempt, Execution, TaskRecord
    from .execution.states import State
    from .monitor import WorkflowMonitor
    from .monitor import charts as charts
    from .recording import record
    from .store import ExecutionStore
    from .store.frames import history, sql

_EXPORTS = {
    "WorkflowOrchestrator": ".engine.orchestrator",
    "ExecutionStore": ".store",
    "WorkflowMonitor": ".monitor",
    "history": ".store.frames",
    "sql": ".store.frames",
    "record": ".recording",
    "Workflow": ".definition.model",
    "json_schema": ".definition.model",
    "load_workflow": ".definition.loader",
    "validate_file": ".definition.loader",
    "validate_text": ".definition.loader",
    "ValidationReport": ".definition.loader",
    "Execution": ".execution.records",
    "TaskRecord": ".execution.records",
    "Attempt": ".execution.records",
    "State": ".execution.states",
    "WorkflowError": ".errors",
    "DefinitionError": ".errors",
    "ValidationError": ".errors",
    "ExpressionError": ".errors",
    "TaskTypeNotImplemented": ".errors",
    "TaskFailed": ".errors",
    "WorkflowFailed": ".errors",
    "TaskFailure": ".errors",
    "StoreError": ".errors",
    "StoreUnavailable": ".errors",
    "StoreWriteFailed": ".errors",
    "ExecutionNotFound": ".errors",
    "ExecutionNotRunning": ".errors",
    "AmbiguousExecutionId": ".errors",
    "Problem": ".errors",
    "ResumeRefused": ".errors",
    "SecretError": ".errors",
}

__all__ = [
    "__version__",
    "AmbiguousExecutionId",
    "Attempt",
    "DefinitionError",
    "Execution",
    "ExecutionNotFound",
    "ExecutionNotRunning",
    "ExecutionStore",
    "ExpressionError",
    "Problem",
    "ResumeRefused",
    "SecretError",
    "State",
    "StoreError",
    "StoreUnavailable",
    "StoreWriteFailed",
    "TaskFailed",
    "TaskFailure",
    "TaskRecord",
    "TaskTypeNotImplemented",
    "ValidationError",
    "ValidationReport",
    "Workflow",
    "WorkflowError",
    "WorkflowFailed",
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


# Modules reachable as attributes: ``from jupyter_workflows import charts``.
_MODULES = {"charts": ".monitor.charts"}


def __getattr__(name: str) -> Any:
    if name in _MODULES:
        value = import_module(_MODULES[name], __name__)
        globals()[name] = value
        return value
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
