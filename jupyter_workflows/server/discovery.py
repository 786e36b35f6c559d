"""Find the workflow files under the server's root, and check that a path given by a client is one.

Workflows are every JSON/YAML file under ``workflows/definitions/`` plus ``*.workflow.json``,
``*.workflow.yaml`` and ``*.workflow.yml`` anywhere. The walk skips hidden directories (the
store lives in ``workflows/.executions``), virtual environments and ``node_modules``, and stops
after ``MAX_DIRS`` directories so a server started in a large home directory still answers.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

SUFFIXES = (".json", ".yaml", ".yml")
WORKFLOW_SUFFIXES = tuple(".workflow" + suffix for suffix in SUFFIXES)
DEFINITIONS = ("workflows", "definitions")
SKIP_DIRS = frozenset({"node_modules", ".venv", "venv", "__pycache__", "site-packages"})
MAX_DIRS = 20_000


class PathRefused(ValueError):
    """A client's path is not a workflow file the server may read; ``status`` is 400 or 404."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def find_workflow_files(root: Path, *, skip: Path | None = None) -> list[str]:
    """Workflow files under ``root`` (a resolved path) as sorted POSIX paths relative to it.

    ``skip`` is a directory never entered (the execution store, when configured somewhere
    not hidden).
    """
    found: list[str] = []
    for walked, (current, dirs, files) in enumerate(os.walk(root), start=1):
        here = Path(current)
        dirs[:] = sorted(
            d for d in dirs if not d.startswith(".") and d not in SKIP_DIRS and here / d != skip
        )
        in_definitions = here.relative_to(root).parts[:2] == DEFINITIONS
        for name in files:
            lower = name.lower()
            wanted = lower.endswith(WORKFLOW_SUFFIXES) or (
                in_definitions and lower.endswith(SUFFIXES)
            )
            # _inside: not a symlink to a file elsewhere
            if wanted and not name.startswith(".") and _inside(here / name, root):
                found.append((here / name).relative_to(root).as_posix())
        if walked >= MAX_DIRS:
            break
    return sorted(found)


def _inside(path: Path, root: Path) -> bool:
    try:
        return path.resolve().is_relative_to(root)
    except (OSError, RuntimeError):
        return False


def resolve_workflow_path(root: Path, path: Any, *, allow_hidden: bool = False) -> Path:
    """The absolute file ``path`` (relative to ``root``, or absolute inside it) names.

    Raises PathRefused: 400 when it is not a string, leaves ``root`` (``..``, an absolute path
    elsewhere, a symlink pointing out), goes through a hidden directory (unless
    ``allow_hidden``) or is not a .json/.yaml/.yml file; 404 when no such file exists.
    """
    if not isinstance(path, str) or not path.strip() or "\0" in path:
        raise PathRefused(400, "'path' must be a workflow file path relative to the server root")
    candidate = Path(path)
    if not candidate.is_absolute():
        candidate = root / candidate
    try:
        resolved = candidate.resolve()
    except (OSError, RuntimeError):  # a symlink loop
        raise PathRefused(400, f"'{path}' cannot be resolved (a symlink loop?)") from None
    if not resolved.is_relative_to(root):
        raise PathRefused(400, f"'{path}' is outside the server's root directory")
    relative = resolved.relative_to(root)
    if not allow_hidden and any(part.startswith(".") for part in relative.parts):
        raise PathRefused(400, f"'{path}' is in a hidden directory or is a hidden file")
    if resolved.suffix.lower() not in SUFFIXES:
        raise PathRefused(400, f"'{path}' is not a workflow file (expected .json, .yaml or .yml)")
    if not resolved.is_file():
        raise PathRefused(404, f"no workflow file at '{path}'")
    return resolved


def relative_path(root: Path, path: str | None) -> str | None:
    """``path`` as a POSIX path relative to ``root`` when it lies inside, else unchanged."""
    if not path:
        return path
    candidate = Path(path)
    if not candidate.is_absolute():
        return path
    try:
        return candidate.relative_to(root).as_posix()
    except ValueError:
        pass
    try:  # the root may be reached through a symlink
        return candidate.resolve().relative_to(root).as_posix()
    except (ValueError, OSError):
        return path
