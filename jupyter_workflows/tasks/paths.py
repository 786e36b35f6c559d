"""The one path policy of every task type: a path in a workflow stays inside the project.

Every file or folder a task reads, writes, runs or works in (``cwd``, ``script``, ``notebook``,
``output``, data_processor inputs, outputs and processor, a sqlite or duckdb file,
``migrations_path`` and its files, docker ``context``, ``dockerfile`` and volume sources) is
taken relative to the project root, then resolved: ``..`` and symlinks (dangling ones too) are
followed. The result must lie inside the root or inside a folder listed in ``allowedPaths`` of
the project's config (``project.allowed_paths``); otherwise ``PathRefused`` names the task, the
field, the path as given, where it leads, the root, and how to allow it.

Paths are checked where they are used, after templates are rendered (``TaskContext.
resolve_path``), so a value from the environment or a webhook payload cannot lead out either.
``workflow validate`` also checks the literal ones (``check_workflow``), with their place in
the file; a templated path can only be checked at run time. A task type names its path fields
in ``TaskType.path_fields``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from ..definition.locate import Finding
from ..errors import WorkflowError

__all__ = ["PathPolicy", "PathRefused", "check_workflow", "glob_folder"]

_GLOB_CHARS = frozenset("*?[")


class PathRefused(WorkflowError):
    """A path that leads outside the project and every allowed folder.

    ``reason`` is the message without its place (for validation, which locates it itself).
    """

    def __init__(self, reason: str, *, task_id: str | None, field: str | None, path: str):
        self.reason, self.task_id, self.field, self.path = reason, task_id, field, path
        place = [f"task '{task_id}'"] if task_id else []
        place += [f"field '{field}'"] if field else []
        super().__init__(f"{', '.join(place)}: {reason}" if place else reason)


class PathPolicy:
    """The folders a project's tasks may use: its root and its ``allowedPaths``."""

    def __init__(
        self, root: str | Path, allowed: tuple[Path, ...] = (), config: Path | None = None
    ):
        self.root = Path(root).resolve()
        self.allowed = tuple(Path(folder).resolve() for folder in allowed)
        self.config = config or self.root / "workflows" / "config.json"  # named in the hint

    @classmethod
    def for_project(cls, root: str | Path) -> PathPolicy:
        """The policy of the project at ``root``; ConfigError for a bad ``allowedPaths``."""
        from ..project import allowed_paths, config_file

        return cls(root, allowed_paths(Path(root)), config_file(Path(root)))

    def permits(self, resolved: Path) -> bool:
        return any(resolved.is_relative_to(folder) for folder in (self.root, *self.allowed))

    def resolve(
        self, path: str | Path, *, task_id: str | None = None, field: str | None = None
    ) -> Path:
        """``path`` (relative to the root unless absolute, ``~`` expanded) resolved; raises
        ``PathRefused`` when it leads outside the root and the allowed folders."""
        given = str(path)
        try:
            resolved = (self.root / os.path.expanduser(given)).resolve()
        except (OSError, RuntimeError, ValueError) as exc:  # a symlink loop, a NUL byte
            reason = f"path {given!r} cannot be resolved ({exc}): refused"
            raise PathRefused(reason, task_id=task_id, field=field, path=given) from None
        if self.permits(resolved):
            return resolved
        leads = "is" if str(resolved) == given else f"leads to {resolved}, which is"
        allowed = ", ".join(str(folder) for folder in self.allowed)
        also = f" and the allowed folders ({allowed})" if allowed else ""
        reason = (
            f"path {given!r} {leads} outside the project root {self.root}{also}: refused; to"
            f' use that folder, list it in "allowedPaths" in {self.config}'
        )
        raise PathRefused(reason, task_id=task_id, field=field, path=given)


def glob_folder(pattern: str) -> str:
    """The folder part of a glob pattern, before its first wildcard (``data/**/*.json``:
    ``data``); what a pattern can reach lies under it."""
    parts = Path(pattern).parts
    for index, part in enumerate(parts):
        if _GLOB_CHARS.intersection(part):
            return str(Path(*parts[:index])) if index else "."
    return str(Path(pattern).parent) if parts else "."


def named_paths(keys: Iterable[str], task: Mapping[str, Any]) -> Iterator[tuple[str, Any]]:
    """(key, value) for each of the dotted ``keys`` a task's raw data has a value at."""
    for key in keys:
        value: Any = task
        for name in key.split("."):
            value = value.get(name) if isinstance(value, Mapping) else None
        if value is not None:
            yield key, value


def _path_fields(kind: str, task: Mapping[str, Any]) -> Iterator[tuple[str, Any]]:
    from ..definition.acceptance import path_keys
    from ..plugins import TASK_TYPES

    keys = path_keys(kind)  # a built-in type's, known without importing its module
    if keys is not None:
        return named_paths(keys, task)
    return TASK_TYPES.load(kind).path_fields(task)  # type: ignore[no-any-return]


def check_workflow(data: Mapping[str, Any], policy: PathPolicy) -> list[Finding]:
    """A finding for each literal path in a workflow's raw data that the policy refuses;
    templated paths are left for run time, unknown task types to validation."""
    from ..definition.templates import split_template
    from ..definition.validate import top_tasks, walk_tasks
    from ..errors import ExpressionError, UnknownPlugin

    findings = []
    for index, top in top_tasks(dict(data)):
        for place, node in walk_tasks(top, ("tasks", index)):
            try:
                fields = list(_path_fields(str(node.get("type")), node))
            except UnknownPlugin:
                continue
            for field, value in fields:
                try:
                    parts = split_template(value) if isinstance(value, str) else [None]
                except ExpressionError:
                    continue  # reported by validation
                if not all(isinstance(part, str) for part in parts):
                    continue  # templated: checked when it runs
                try:
                    policy.resolve("".join(parts))  # type: ignore[arg-type]
                except PathRefused as exc:
                    keys = (int(key) if key.isdigit() else key for key in field.split("."))
                    findings.append(Finding(exc.reason, (*place, *keys)))
    return findings
