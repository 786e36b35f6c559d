"""The workflows the panel lists: each file found, checked, with its latest recorded run.

Blocking (files, validation, DuckDB): the service runs it in a worker thread.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from ..definition.loader import ValidationReport, validate_file
from ..errors import Problem
from .discovery import find_workflow_files

LAST_RUNS_SQL = """
SELECT workflow, arg_max(id, started_at), arg_max(status, started_at), epoch(max(started_at))
FROM executions GROUP BY workflow
"""


def list_workflows(
    root: Path, store: Any | None, project_root: Path | None = None
) -> list[dict[str, Any]]:
    """Every workflow file under ``root`` with name, trigger, validity and latest run.

    ``store`` is the ExecutionStore to read latest runs from, or None when there is no history
    yet (nothing is created just by listing). ``project_root``: see ``find_workflow_files``.
    """
    skip = store.path if store is not None else None
    last = _last_runs(store) if store is not None else {}
    items = []
    for rel in find_workflow_files(root, skip=skip, project_root=project_root):
        report = validate_file(root / rel)
        name = report.workflow.name if report.workflow else _name_in(report, root / rel)
        trigger = report.workflow.trigger if report.workflow else None
        run = last.get(name, (None, None, None))
        items.append(
            {
                "path": rel,
                "name": name,
                "description": report.workflow.description if report.workflow else None,
                "trigger": trigger.type if trigger is not None else None,
                "valid": report.ok,
                "problems": len(report.problems),
                "last_status": run[1],
                "last_execution_id": run[0],
                "last_started_at": run[2],
            }
        )
    return items


def _last_runs(store: Any) -> dict[str, tuple[str, str, float]]:
    _, rows = store.query(LAST_RUNS_SQL)
    return {r[0]: (r[1], r[2], r[3]) for r in rows}


def _name_in(report: ValidationReport, path: Path) -> str:
    """The name an invalid definition gives itself, else its file name without suffixes."""
    from ..definition.loader import parse_text

    try:
        data, _ = parse_text(path.read_text(encoding="utf-8-sig"), fmt=_format(path))
    except Exception:  # unreadable or unparsable: the report already says why
        data = None
    if isinstance(data, dict) and isinstance(data.get("name"), str) and data["name"].strip():
        return str(data["name"])
    stem = path.name.split(".")[0]
    return stem or path.name


def _format(path: Path) -> str:
    return "json" if path.suffix.lower() == ".json" else "yaml"


def validation_json(report: ValidationReport, root: Path, rel: str) -> dict[str, Any]:
    """``POST validate``'s answer: the problems, their file shown as the client named it."""
    return {
        "path": rel,
        "ok": report.ok,
        "problems": problems_json(report.problems, root, rel),
    }


def problems_json(problems: list[Problem], root: Path, rel: str) -> list[dict[str, object]]:
    """Problems as dicts, their file relative to the root (as the client named it)."""
    return [_located(p, root, rel).to_dict() for p in problems]


def _located(problem: Problem, root: Path, rel: str) -> Problem:
    if problem.file and Path(problem.file).is_absolute():
        try:
            return replace(problem, file=Path(problem.file).relative_to(root).as_posix())
        except ValueError:
            return replace(problem, file=rel)
    return problem
