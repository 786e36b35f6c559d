"""The seams: task types, alert channels and executors, each a name -> implementation registry.

Like papermill's engines, a registry maps a name to ``"module:attribute"`` text, so nothing is
imported until it is used, and other packages add names through an entry-point group::

    [project.entry-points."jupyter_workflows.tasks"]
    teams_call = "my_package.tasks:TeamsCallType"          # a TaskType subclass

    [project.entry-points."jupyter_workflows.alert_channels"]
    teams = "my_package.alerts:teams_channel"              # (env) -> Channel

    [project.entry-points."jupyter_workflows.executors"]
    ray = "my_package.executors:RayExecutor"

Entry points are read only when a name is not built in (``importlib.metadata`` costs ~40 ms,
more than the rest of ``workflow validate``), or when every name is asked for. Adding a
built-in is one line in the tables below. This module sits at the bottom of the layers: it
names the modules above it in text only.
"""

from __future__ import annotations

import importlib
from typing import Any

from .errors import UnknownPlugin


def resolve(target: str) -> Any:
    """The object ``"module:attribute"`` text names (the attribute may be dotted,
    ``"module:Class.inner"``), its module imported if it is not yet."""
    module_name, _, attribute = target.partition(":")
    found: Any = importlib.import_module(module_name)
    for part in attribute.split("."):
        found = getattr(found, part)
    return found


class Registry:
    """Names of one kind of plugin, each loaded on first use."""

    def __init__(self, kind: str, group: str, builtin: dict[str, str]):
        self.kind = kind  # "task type", for messages
        self.group = group  # the entry-point group other packages register in
        self.builtin = builtin
        self._installed: dict[str, str] | None = None  # entry points, once read
        self._registered: dict[str, Any] = {}
        self._loaded: dict[str, Any] = {}
        # Bumped whenever the set of names grows, so that what is built from the names (the
        # workflow model's union of task types) knows to rebuild.
        self.generation = 0

    def _entry_points(self) -> dict[str, str]:
        if self._installed is None:
            from importlib.metadata import entry_points

            found = {ep.name: ep.value for ep in entry_points(group=self.group)}
            self._installed = {k: v for k, v in found.items() if k not in self.builtin}
            if self._installed:
                self.generation += 1
        return self._installed

    def known_without_scan(self) -> list[str]:
        """Built-in and registered names, plus installed ones if they were read already; in
        that order (the built-ins as the table lists them)."""
        return list(dict.fromkeys([*self.builtin, *self._registered, *(self._installed or {})]))

    def names(self) -> list[str]:
        """Every name: built in, installed by another package, or registered at run time."""
        self._entry_points()
        return self.known_without_scan()

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        if name in self.builtin or name in self._registered:
            return True
        return name in self._entry_points()

    def is_builtin(self, name: str) -> bool:
        """Whether ``name`` is this package's own (not replaced by a ``register`` call)."""
        return name in self.builtin and name not in self._registered

    def load(self, name: str) -> Any:
        """The object registered as ``name``; raises ``UnknownPlugin``."""
        if name in self._registered:
            return self._registered[name]
        if name in self._loaded:
            return self._loaded[name]
        target = self.builtin.get(name)
        if target is None:
            target = self._entry_points().get(name)
        if target is None:
            raise UnknownPlugin(self.kind, name, self.names())
        value = resolve(target)
        self._loaded[name] = value
        return value

    def register(self, name: str, value: Any) -> None:
        """Add or replace ``name`` in this process (tests, notebooks)."""
        if name not in self.known_without_scan():
            self.generation += 1
        self._registered[name] = value

    def unregister(self, name: str) -> None:
        if self._registered.pop(name, None) is not None:
            self.generation += 1


TASK_TYPES = Registry(
    "task type",
    "jupyter_workflows.tasks",
    {
        "shell": "jupyter_workflows.tasks.shell:ShellType",
        "python": "jupyter_workflows.tasks.python:PythonType",
        "javascript": "jupyter_workflows.tasks.javascript:JavaScriptType",
        "http": "jupyter_workflows.tasks.http:HttpType",
        "docker": "jupyter_workflows.tasks.docker:DockerType",
        "data_processor": "jupyter_workflows.tasks.data_processor:DataProcessorType",
        "database": "jupyter_workflows.tasks.database:DatabaseType",
        "conditional": "jupyter_workflows.tasks.composite:ConditionalType",
        "parallel": "jupyter_workflows.tasks.composite:ParallelType",
        "loop": "jupyter_workflows.tasks.composite:LoopType",
        "notebook": "jupyter_workflows.tasks.notebook:NotebookType",
    },
)

ALERT_CHANNELS = Registry(
    "alert channel",
    "jupyter_workflows.alert_channels",
    {
        "console": "jupyter_workflows.monitor.channels:console_channel",
        "slack": "jupyter_workflows.monitor.channels:slack_channel",
        "webhook": "jupyter_workflows.monitor.channels:webhook_channel",
        "email": "jupyter_workflows.monitor.channel_email:email_channel",
    },
)

EXECUTORS = Registry(
    "executor",
    "jupyter_workflows.executors",
    {
        "local": "jupyter_workflows.engine.executors:LocalExecutor",
        "dask": "jupyter_workflows.engine.dask_executor:DaskExecutor",
    },
)
