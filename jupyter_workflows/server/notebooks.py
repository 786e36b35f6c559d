"""Executed notebooks made openable: a copy outside the hidden store, on request.

The store keeps each executed notebook under ``workflows/.executions/artifacts/``; Jupyter's
contents API refuses hidden folders by default, so the panel asks for a copy in
``workflows/outputs/<workflow>/<execution>/<task>.ipynb`` (as jupyter-scheduler copies a job's
outputs next to the user's files) and opens that. The copy is made once; the store's file
stays the record.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

from ..execution.records import Execution
from ..project import OUTPUTS

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


class NotebookUnavailable(Exception):
    """No executed notebook to open: ``status`` 404 (no such task) or 409 (none kept)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def openable_copy(execution: Execution, task_id: str, root: Path) -> tuple[Path, bool]:
    """The path (relative to ``root``) of a visible copy of the task's executed notebook, and
    whether it was made by this call. A notebook already outside hidden folders is its own."""
    record = execution.tasks.get(task_id)
    if record is None:
        raise NotebookUnavailable(404, f"execution '{execution.id}' has no task '{task_id}'")
    output = record.result.get("output") if isinstance(record.result, dict) else None
    if record.type != "notebook" or not isinstance(output, str):
        raise NotebookUnavailable(409, f"task '{task_id}' kept no executed notebook")
    source = Path(output)
    if not source.is_absolute():
        source = root / source
    if not source.is_file():
        raise NotebookUnavailable(
            409, f"the executed notebook of task '{task_id}' is gone (cleaned up?): {output}"
        )
    target = openable_path(execution.workflow, execution.id, task_id, source, root)
    if target == _inside(source, root):
        return target, False
    destination = root / target
    if destination.exists():
        return target, False
    destination.parent.mkdir(parents=True, exist_ok=True)
    # A temp file of its own: two clicks at once must not write the same one.
    handle, temp = tempfile.mkstemp(dir=destination.parent, prefix=".", suffix=".tmp")
    os.close(handle)
    try:
        shutil.copyfile(source, temp)
        os.replace(temp, destination)  # a reader never sees half a notebook
    finally:
        Path(temp).unlink(missing_ok=True)
    return target, True


def openable_path(workflow: str, execution_id: str, task_id: str, output: Path, root: Path) -> Path:
    """Where the executed notebook ``output`` opens from (relative to ``root``): itself when
    it is visible inside the root, else its copy under OUTPUTS. What the panel's link says."""
    source = output if output.is_absolute() else root / output
    inside = _inside(source, root)
    if inside is not None:
        return inside
    return OUTPUTS / _safe(workflow) / execution_id[:8] / f"{_safe(task_id)}.ipynb"


def _inside(source: Path, root: Path) -> Path | None:
    """``source`` relative to ``root``, when inside it and in no hidden folder."""
    try:
        inside = source.resolve().relative_to(root.resolve())
    except ValueError:
        return None
    return None if any(part.startswith(".") for part in inside.parts) else inside


def _safe(name: str) -> str:
    return _UNSAFE.sub("-", name).strip("-.") or "workflow"
