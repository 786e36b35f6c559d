"""The task types the engine runs: one instance per type and process, from ``plugins.TASK_TYPES``.

The names, the built-in table and the entry-point group (``jupyter_workflows.tasks``) live in
``plugins``; here the classes become the instances that run attempts, and tests or notebooks
can put an instance of their own in place of one (``register``).
"""

from __future__ import annotations

from ..plugins import TASK_TYPES
from .base import TaskType

_instances: dict[str, TaskType] = {}


def get_task_type(name: str) -> TaskType:
    """The instance running tasks of type ``name``; raises ``UnknownPlugin``."""
    instance = _instances.get(name)
    if instance is None:
        instance = _instances[name] = TASK_TYPES.load(name)()
    return instance


def register(name: str, task_type: TaskType) -> None:
    """Run tasks of type ``name`` with ``task_type`` in this process (tests, notebooks).

    A new name is a new task type: its class must declare ``model``. For a known name only
    the instance changes; the workflow format stays the declared type's.
    """
    if name not in TASK_TYPES.known_without_scan():
        TASK_TYPES.register(name, type(task_type))
    _instances[name] = task_type


def available() -> list[str]:
    return TASK_TYPES.names()
