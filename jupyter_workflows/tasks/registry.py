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
    "http": "jupyter_workflows.tasks.http:HttpType",
    "docker": "jupyter_workflows.tasks.docker.task:DockerType",
    "data_processor": "jupyter_workflows.tasks.data_processor:DataProcessorType",
    "database": "jupyter_workflows.tasks.database.task:DatabaseType",
    "conditional": "jupyter_workflows.tasks.composite:ConditionalType",
    "parallel": "jupyter_workflows.tasks.composite:ParallelType",
    "loop": "jupyter_workflows.tasks.composite:LoopType",
    "notebook": "jupyter_workflows.tasks.notebook.task:NotebookType",
}


def _load(name: str, target: str) -> TaskType:
    module_name, _, class_name = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name == module_name:  # a built-in type whose module is not written yet
            raise TaskTypeNotImplemented(name) from None
        raise
    return getattr(module, class_name)()  # type: ignore[no-any-return]


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
        raise WorkflowError(f"unknown task type '{name}'")
    instance = _instances[name] = _load(name, target)
    return instance


def register(name: str, task_type: TaskType) -> None:
    """Register an implementation at run time (tests, notebooks)."""
    _instances[name] = task_type


def available() -> list[str]:
    return sorted(set(BUILTIN) | set(_entry_points()) | set(_instances))
