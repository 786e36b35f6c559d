"""Notebook files: reading with clear errors, papermill's metadata, writing the executed copy.

The executed notebook carries what papermill writes (``metadata.papermill`` with parameters,
paths, times and whether it failed; per-cell status and times; on failure a red banner at the
top linking to the failing cell), so papermill's tools and habits keep working.
"""

from __future__ import annotations

import json
import os
import time
import uuid
import warnings
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ...errors import WorkflowError

ERROR_TAG = "papermill-error-cell-tag"
_STYLE = "color:red; font-family:Helvetica Neue, Helvetica, Arial, sans-serif; font-size:2em;"
ERROR_BANNER = (
    f'<span style="{_STYLE}">An Exception was encountered at '
    "'<a href=\"#papermill-error-cell\">In [%s]</a>'.</span>"
)
ERROR_ANCHOR = (
    f'<span id="papermill-error-cell" style="{_STYLE}">'
    "Execution using papermill encountered an exception here and stopped:</span>"
)


def read_notebook(path: Path) -> Any:
    """The notebook at ``path`` as nbformat v4; WorkflowError naming the file when it is not."""
    if not path.exists():
        raise WorkflowError(f"notebook {path} not found")
    try:
        text = path.read_text(encoding="utf-8")
    except IsADirectoryError:
        raise WorkflowError(f"notebook {path} is a directory, not a file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise WorkflowError(f"cannot read notebook {path}: {exc}") from None
    try:
        json.loads(text)
    except ValueError as exc:
        raise WorkflowError(f"notebook {path} is not valid JSON: {exc}") from None
    import nbformat

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # missing cell ids and the like are fixed on read
            return nbformat.reads(text, as_version=4)
    except Exception as exc:  # nbformat raises jsonschema's errors and its own
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise WorkflowError(f"notebook {path} is not a valid notebook: {first}") from None


def prepare_input(nb: Any) -> Any:
    """``nb`` as papermill runs it: upgraded to the latest v4 format (4.5: every cell has an
    id) and without the error banners an earlier papermill run left in it, so the executed
    copy has one banner, pointing at this run's failing cell."""
    from nbformat import v4

    nb = v4.upgrade(nb) or nb
    nb.cells = [cell for cell in nb.cells if ERROR_TAG not in _tags(cell)]
    return nb


def kernel_name(nb: Any) -> str | None:
    """The kernel the notebook was saved with."""
    spec = nb.get("metadata", {}).get("kernelspec") or {}
    name = spec.get("name")
    return name if isinstance(name, str) and name else None


def start(
    nb: Any,
    *,
    input_path: Path,
    output_path: Path,
    parameters: dict[str, Any],
    about: dict[str, Any],
) -> None:
    """Clear old results and stamp the papermill metadata before the first cell runs."""
    meta = nb.metadata.setdefault("papermill", {})
    meta.update(
        input_path=str(input_path),
        output_path=str(output_path),
        parameters=parameters,
        start_time=_now(),
        end_time=None,
        duration=None,
        exception=None,
    )
    meta["_started"] = time.monotonic()
    nb.metadata["jupyter_workflows"] = about
    for cell in nb.cells:
        if cell.get("cell_type") == "code":
            cell.outputs = []
            cell.execution_count = None
        cell.setdefault("metadata", {})["papermill"] = {
            "exception": None,
            "start_time": None,
            "end_time": None,
            "duration": None,
            "status": "pending",
        }


def cell_started(cell: Any) -> None:
    cell.metadata["papermill"].update(status="running", start_time=_now())
    cell.metadata["papermill"]["_started"] = time.monotonic()


def cell_finished(cell: Any, ok: bool) -> None:
    meta = cell.metadata["papermill"]
    started = meta.pop("_started", None)
    meta.update(
        status="completed" if ok else "failed",
        exception=not ok,
        end_time=_now(),
        duration=None if started is None else round(time.monotonic() - started, 6),
    )


def finish(
    nb: Any, failed_position: int | None, execution_count: Any, *, exited: bool = False
) -> None:
    """End times; on failure papermill's banner at the top and an anchor at the cell.

    ``exited``: a cell ended the notebook with ``SystemExit(0)``; papermill records an
    exception for the notebook then, but no banner. Without either, ``exception`` stays
    None, as papermill leaves it.
    """
    meta = nb.metadata["papermill"]
    started = meta.pop("_started", None)
    meta.update(
        end_time=_now(),
        duration=None if started is None else round(time.monotonic() - started, 6),
        exception=True if failed_position is not None or exited else None,
    )
    for cell in nb.cells:
        cell.metadata["papermill"].pop("_started", None)
    if failed_position is None:
        return
    from nbformat.v4 import new_markdown_cell

    anchor = new_markdown_cell(ERROR_ANCHOR)
    banner = new_markdown_cell(ERROR_BANNER % ("" if execution_count is None else execution_count))
    for cell in (anchor, banner):
        cell.metadata["tags"] = [ERROR_TAG]
    nb.cells.insert(failed_position, anchor)
    nb.cells.insert(0, banner)


def write_notebook(nb: Any, path: Path) -> None:
    """Write atomically (a reader never sees half a notebook); OSError when it cannot."""
    from nbformat import v4

    text = v4.writes(nb)
    path.parent.mkdir(parents=True, exist_ok=True)
    # open(..., "x") rather than mkstemp: the file gets the usual permissions (umask), not 0600.
    tmp = path.parent / f".{path.name}.{uuid.uuid4().hex[:8]}.tmp"
    try:
        with open(tmp, "x", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _tags(cell: Any) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", ()))


def _now() -> str:
    return datetime.now(timezone.utc).isoformat()
