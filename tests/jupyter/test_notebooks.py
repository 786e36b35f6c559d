"""The example notebooks run top to bottom on a real kernel, and say what they should.

They run with nbclient in a copy of the project (so their builds and history stay out of the
checkout), in order: 03 explores the history that 01 and 02 made. Each kernel starts in
``notebooks/``, as JupyterLab starts a notebook's kernel in the notebook's folder: the project
root is found above it.
"""

from __future__ import annotations

import ast
import shutil
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient

from jupyter_workflows.store.frames import history

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = REPO / "notebooks"
SKIP = {".venv", ".git", "build", "dist", ".deploy", ".executions", "__pycache__", ".pytest_cache",
        ".mypy_cache", ".ruff_cache", "node_modules", ".benchmarks"}  # fmt: skip

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def repo_copy(tmp_path_factory) -> Path:
    target = tmp_path_factory.mktemp("notebooks") / "project"
    shutil.copytree(REPO, target, ignore=lambda _d, names: [n for n in names if n in SKIP])
    return target


def _execute(name: str, root: Path) -> Any:
    """Run ``notebooks/name`` of the project at ``root`` on a fresh kernel whose working
    directory is the notebook's folder."""
    folder = root / "notebooks"
    notebook = nbformat.read(folder / name, as_version=4)
    client = NotebookClient(
        notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(folder)}}
    )
    client.execute()  # a failing cell raises CellExecutionError with its traceback
    return notebook


@pytest.fixture(scope="module")
def run_01(repo_copy: Path) -> Any:
    return _execute("01-run-a-workflow.ipynb", repo_copy)


@pytest.fixture(scope="module")
def run_02(repo_copy: Path) -> Any:
    return _execute("02-parameterised-notebook-pipeline.ipynb", repo_copy)


@pytest.fixture(scope="module")
def run_03(repo_copy: Path, run_01: Any, run_02: Any) -> Any:
    return _execute("03-explore-execution-metrics.ipynb", repo_copy)


def _cell(notebook: Any, tag: str) -> Any:
    matches = [c for c in notebook.cells if tag in c.get("metadata", {}).get("tags", [])]
    assert len(matches) == 1, f"one cell tagged {tag!r} expected, found {len(matches)}"
    return matches[0]


def _text(cell: Any) -> str:
    """What a cell printed and its results' plain-text forms, joined."""
    parts = []
    for output in cell.outputs:
        if output.output_type == "stream":
            parts.append(output.text)
        elif "data" in output:
            parts.append(output.data.get("text/plain", ""))
    return "\n".join(parts)


def _result(cell: Any, mime: str = "text/plain") -> str:
    results = [o for o in cell.outputs if o.output_type == "execute_result"]
    assert len(results) == 1, cell.outputs
    return results[0].data[mime]


def test_every_example_notebook_is_tested():
    names = {p.name for p in NOTEBOOKS.glob("*.ipynb")}
    assert names == {
        "01-run-a-workflow.ipynb",
        "02-parameterised-notebook-pipeline.ipynb",
        "03-explore-execution-metrics.ipynb",
    }
    for name in names:  # committed without outputs: the tests and readers run them fresh
        notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
        nbformat.validate(notebook)
        assert not any(c.get("outputs") for c in notebook.cells), name


def test_01_runs_the_development_workflow_with_the_magic_and_the_api(run_01, repo_copy):
    assert "development-workflow" in _result(_cell(run_01, "show-execution"), "text/html")
    inspect = _cell(run_01, "inspect")
    assert "status: succeeded" in _text(inspect)
    statuses = ast.literal_eval(_result(inspect))
    assert statuses["type-check"] == "skipped"  # TYPE_CHECK=false reached the condition
    assert {s for task, s in statuses.items() if task != "type-check"} == {"succeeded"}
    assert "jupyter_workflows 0." in _text(_cell(run_01, "results"))
    api = _text(_cell(run_01, "python-api"))
    assert "status: succeeded" in api
    assert any(line.split()[:2] == ["type-check", "skipped"] for line in api.splitlines())
    runs = history(workflow="development-workflow", project_root=repo_copy, limit=None)
    assert list(runs["status"])[-2:] == ["succeeded", "succeeded"]
    assert "development-workflow" in _text(_cell(run_01, "history"))


def test_02_drives_the_notebook_pipeline_into_duckdb(run_02, repo_copy):
    ran = _text(_cell(run_02, "run-pipeline"))
    assert "status: succeeded" in ran
    assert "clean      notebook" in ran and "summarise  notebook" in ran
    recorded = ast.literal_eval(_result(_cell(run_02, "recorded")))
    # ROWS=300 per region, three regions, every 25th row dirty (12 per region) and dropped
    assert recorded["clean"] == {
        "rows_in": 900,
        "rows_out": 864,
        "regions": ["north", "south", "west"],
    }
    assert recorded["summarise"]["top_region"] in {"north", "south", "west"}
    kept = _text(_cell(run_02, "executed-notebooks"))
    assert "clean: " in kept and "summarise: " in kept
    assert "warehouse rows: 864" in _text(_cell(run_02, "check"))
    assert (repo_copy / "build" / "pipeline" / "warehouse.duckdb").is_file()
    assert "'region'" in _result(_cell(run_02, "report"))


def test_03_queries_the_history_and_draws_the_charts(run_03, repo_copy):
    assert "<table" in _result(_cell(run_03, "history"), "text/html")
    per_workflow = _result(_cell(run_03, "sql-workflows"))
    assert "development-workflow" in per_workflow and "notebook-pipeline" in per_workflow
    assert "p50_ms" in _result(_cell(run_03, "sql-tasks"))
    assert "stdout" in _result(_cell(run_03, "sql-logs"))  # the latest run printed lines
    for tag, title in [
        ("chart-durations", "Run durations"),
        ("chart-success", "Success rate"),
        ("chart-tasks", "Task durations"),
        ("chart-gantt", "Execution "),
    ]:
        html = _result(_cell(run_03, tag), "text/html")
        assert "vegaEmbed" in html and title in html, tag
    png = repo_copy / "build" / "metrics.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 30_000
    overall = ast.literal_eval(_result(_cell(run_03, "health")))
    assert overall["runs"] == 3 and overall["succeeded"] == 3  # two runs in 01, one in 02
