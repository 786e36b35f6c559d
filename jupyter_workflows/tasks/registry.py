"""Task type name -> implementation, loaded lazily; other packages add types by entry point.

Like papermill's engines: built-in types are named by "module:Class" so that the CLI imports
only the types a workflow uses, and the entry-point group ``jupyter_workflows.tasks`` lets other
packages register more (``mytype = "my_pkg.tasks:MyType"``).
"""

from __future__ import annotations

import importlib
from functools import lru_cache

from ..errors import TaskTypeNotImplemented, WorkflowError
from .base import TaskType

ENTRY_POINT_GROUP = "jupyter_workflows.tasks"

BUILTIN: dict[str, str] = {
    "shell": "jupyter_workflows.tasks.shell:ShellType",
    "python": "jupyter_workflows.tasks.python:PythonType",
    "javascript": "jupyter_workflows.tasks.javascript:JavaScriptType",
}

# Modelled (so files validate) but not executable by this version.
NOT_YET: frozenset[str] = frozenset(
    {"http", "docker", "data_processor", "database", "conditional", "parallel", "loop", "notebook"}
)


def _load(target: str) -> TaskType:
    module_name, _, class_name = target.partition(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    return cls()  # type: ignore[no-any-return]


@lru_cache(maxsize=1)
def _entry_points() -> dict[str, str]:
    from importlib.metadata import entry_points

    return {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}


_instances: dict[str, TaskType] = {}


def get_task_type(name: str) -> TaskType:
    """The implementation of ``name``; raises TaskTypeNotImplemented or WorkflowError."""
    if name in _instances:
        return _instances[name]
    target = BUILTIN.get(name) or _entry_points().get(name)
    if target is None:
        if name in NOT_YET:
            raise TaskTypeNotImplemented(name)
        raise WorkflowError(f"unknown task type '{name}'")
    instance = _instances[name] = _load(target)
    return instance


def register(name: str, task_type: TaskType) -> None:
    """Register an implementation at run time (tests, notebooks)."""
    _instances[name] = task_type


def available() -> list[str]:
    return sorted(set(BUILTIN) | set(_entry_points()) | set(_instances))
