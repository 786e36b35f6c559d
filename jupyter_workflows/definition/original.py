"""Spellings only the original Node format has, each with the native one to write instead.

Files in the original format load and run unchanged: the model accepts these spellings and
turns them into the native form (``model.py`` and the task types' models). This module only
names them, for ``workflow validate --strict``, as warnings placed where the file uses them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from .locate import WARNING, DataPath, Finding
from .validate import top_tasks, walk_tasks

_DOCKER_FIELDS = ("dockerfile", "context", "tags", "build_args", "image", "command", "volumes",
                  "working_dir")  # fmt: skip


def original_spellings(data: dict[str, Any]) -> list[Finding]:
    """A warning for each original-only spelling in a workflow's raw data."""
    found = [Finding(f"original-format spelling: {text}", path, WARNING)
             for path, text in _workflow(data)]  # fmt: skip
    for index, node in top_tasks(data):
        for path, task in walk_tasks(node, ("tasks", index)):
            found += [
                Finding(f"original-format spelling: {text}", (*path, *where), WARNING)
                for where, text in _task(task, nested=len(path) > 2)
            ]
    return found


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _workflow(data: dict[str, Any]) -> Iterator[tuple[DataPath, str]]:
    if isinstance(data.get("environment"), dict):
        yield ("environment",), "write it as defaults.environment"
    trigger = data.get("trigger")
    if isinstance(trigger, dict) and trigger.get("type") == "schedule":
        yield ("trigger", "type"), "write type: cron"
    expected = data.get("expected_duration")
    if _is_number(expected):
        yield ("expected_duration",), f'a bare number is milliseconds; write "{expected:g}ms"'


def _task(task: dict[str, Any], nested: bool) -> Iterator[tuple[DataPath, str]]:
    kind = task.get("type")
    if nested and kind is None and "command" in task:
        yield (), "a child without 'type' is a shell task; write type: shell"
    if kind == "loop":
        if "task" in task:
            yield ("task",), "write it as then"
        if isinstance(task.get("parallel"), bool):
            native = "max_parallel: N (the number of items)" if task["parallel"] else "nothing"
            yield ("parallel",), f"a loop's parallel; write {native}"
    elif task.get("parallel") is True:
        yield ("parallel",), "parallel: true is the default; leave it out"
    if kind == "docker" and isinstance(task.get("config"), dict):
        yield ("config",), "write the docker fields (dockerfile, tags...) on the task itself"
    config = task.get("config")
    if kind == "database" and isinstance(config, dict) and "operation" not in config:
        inferred = "migration" if "migrations_path" in config else "the one it implies"
        yield ("config",), f"no operation; write operation: {inferred}"
    if kind == "http":
        if "data" in task:
            yield ("data",), "write it as body"
        if _is_number(task.get("timeout")):
            timeout = task["timeout"]
            yield ("timeout",), f'a bare number is milliseconds here; write "{timeout:g}ms"'
