"""The workflow files the server lists, and the check that a path given by a client is one.

The files are the project's, by the one rule of ``jupyter_workflows.project.workflow_files``
(``workflows/definitions/`` plus ``*.workflow.json|yaml|yml`` anywhere, hidden folders, virtual
environments, ``node_modules`` and the store skipped, the walk capped), limited to those under
the server's root: the only ones a client can open or name.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..project import SUFFIXES, workflow_files


class PathRefused(ValueError):
    """A client's path is not a workflow file the server may read; ``status`` is 400 or 404."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def find_workflow_files(
    root: Path, *, skip: Path | None = None, project_root: Path | None = None
) -> list[str]:
    """Workflow files under ``root`` (a resolved path) as sorted POSIX paths relative to it.

    They are the files of the project at ``project_root`` (default: ``root``), which may lie
    above the server's root (a server started in a project's sub-folder). ``skip`` is a
    directory never entered (default: the project's store).
    """
    found = workflow_files(project_root or root, skip=skip)
    return sorted(path.relative_to(root).as_posix() for path in found if path.is_relative_to(root))


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
