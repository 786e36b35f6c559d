"""The workflows the panel lists: each file found, checked, with its latest recorded run.

Blocking (files, validation, DuckDB): the service runs it in a worker thread.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..definition.loader import ValidationReport, validate_file
from ..errors import Problem
from .discovery import find_workflow_files

if TYPE_CHECKING:
    from ..definition.model import Workflow
    from ..store import ExecutionStore


def list_workflows(
    root: Path, store: ExecutionStore | None, project_root: Path | None = None
) -> list[dict[str, Any]]:
    """Every workflow file under ``root`` with name, trigger, validity and latest run.

    ``store`` is the ExecutionStore to read latest runs from, or None when there is no history
    yet (nothing is created just by listing). ``project_root``: see ``find_workflow_files``.
    """
    skip = store.path if store is not None else None
    last = store.latest_runs() if store is not None else {}
    items = []
    for rel in find_workflow_files(root, skip=skip, project_root=project_root):
        report = validate_file(root / rel)
        name = report.workflow.name if report.workflow else _name_in(report, root / rel)
        trigger = report.workflow.trigger if report.workflow else None
        run = last.get(name)
        items.append(
            {
                "path": rel,
                "name": name,
                "description": report.workflow.description if report.workflow else None,
                "trigger": trigger.type if trigger is not None else None,
                "valid": report.ok,
                "problems": len(report.problems),
                "last_status": run.status if run else None,
                "last_execution_id": run.execution_id if run else None,
                "last_started_at": run.started_at if run else None,
                "inputs": workflow_inputs(report.workflow) if report.workflow else None,
            }
        )
    return items


def workflow_inputs(workflow: Workflow) -> dict[str, Any]:
    """What a run of ``workflow`` can be given, for the panel's run form: each ``${env.X}``
    it references with its declared default (``defaults.environment``, else ""), and each
    ``${params.X}`` it references."""
    from ..definition.templates import find_references

    env: dict[str, str] = {}
    params: list[str] = []
    for text in _strings(workflow.model_dump(mode="json", by_alias=True, exclude_none=True)):
        try:
            references = find_references(text)
        except Exception:  # noqa: S112 - a malformed template is validation's to report
            continue
        for ref in references:
            if ref.scope == "env" and ref.path[0] not in env:
                env[ref.path[0]] = str(workflow.defaults.environment.get(ref.path[0], ""))
            elif ref.scope == "params" and ref.path[0] not in params:
                params.append(ref.path[0])
    return {"env": env, "params": params}


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value] if "${" in value else []
    if isinstance(value, dict):
        return [s for item in value.values() for s in _strings(item)]
    if isinstance(value, list):
        return [s for item in value for s in _strings(item)]
    return []


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
