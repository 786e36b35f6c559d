"""A run's text and HTML summary: what saved, converted and previewed notebooks keep of the
live widget (and of a background run's handle)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from jupyter_workflows.engine import WorkflowOrchestrator
from jupyter_workflows.jupyter.summary import summary_html, summary_text
from jupyter_workflows.jupyter.widget import RunView

REPO = Path(__file__).resolve().parents[2]
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"


def failing_workflow() -> dict:
    return {
        "name": "half<ok>",
        "tasks": [
            {"id": "fine", "type": "shell", "command": "echo fine"},
            {
                "id": "broken",
                "type": "shell",
                "command": "for i in 1 2 3 4 5 6 7; do echo line-$i; done; exit 3",
            },
            {"id": "after", "type": "shell", "command": "true", "depends_on": ["broken"]},
        ],
    }


def test_the_summary_says_status_tasks_by_state_duration_and_failed_lines(project: Path) -> None:
    execution = WorkflowOrchestrator(project).execute(failing_workflow(), raise_on_failure=False)
    text = summary_text(execution)
    head = text.splitlines()[0]
    assert head.startswith("half<ok>: failed in ")
    assert "1 failed, 1 skipped, 1 succeeded" in head and execution.id in head
    assert "✗ broken failed" in text
    # the last five lines of the failed task, not the first ones
    assert "line-7" in text and "line-3" in text and "line-2" not in text
    page = summary_html(execution)
    assert "half&lt;ok&gt;" in page and "half<ok>" not in page  # escaped
    assert "line-7" in page and "failed" in page


def test_before_the_run_starts_the_summary_says_so() -> None:
    assert "waiting for the run to start" in summary_text(None, "etl")
    assert "waiting for the run to start" in summary_html(None, "etl")


def test_the_widgets_bundle_carries_the_summary_beside_the_view(project: Path) -> None:
    view = RunView(text=False)
    WorkflowOrchestrator(project, sinks=[view]).execute(failing_workflow(), raise_on_failure=False)
    bundle = view._repr_mimebundle_()
    assert bundle[WIDGET_MIME]["model_id"] == view.widget.model_id
    assert "RunWidget" not in bundle["text/plain"] and "object at 0x" not in bundle["text/plain"]
    assert "failed in" in bundle["text/plain"] and "line-7" in bundle["text/plain"]
    assert "line-7" in bundle["text/html"]


@pytest.mark.slow
def test_nbconvert_of_a_notebook_with_the_widget_shows_the_summary(project: Path) -> None:
    (project / "wf.json").write_text(json.dumps(failing_workflow()))
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [
        nbformat.v4.new_code_cell("%load_ext jupyter_workflows"),
        nbformat.v4.new_code_cell("ran = %workflow run wf.json --no-raise"),
    ]
    nbformat.write(notebook, project / "run.ipynb")
    env = {**os.environ, "PYTHONPATH": str(REPO)}

    def nbconvert(*args: str) -> None:
        done = subprocess.run(
            [sys.executable, "-m", "nbconvert", *args], cwd=project, env=env,
            capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr

    nbconvert("--to", "notebook", "--execute", "--output", "ran.ipynb", "run.ipynb")
    ran = nbformat.read(project / "ran.ipynb", as_version=4)
    [widget] = [o for o in ran.cells[1].outputs if WIDGET_MIME in o.get("data", {})]
    text = widget["data"]["text/plain"]
    assert "object at 0x" not in text
    assert text.startswith("half<ok>  ·  ") and ": failed in " in text  # the final state
    assert "1 failed, 1 skipped, 1 succeeded" in text and "line-7" in text
    assert "jupyter-workflows-summary" in widget["data"]["text/html"]
    # A converter that cannot draw widgets shows the summary in the widget's place.
    nbconvert("--to", "markdown", "ran.ipynb")
    page = (project / "ran.md").read_text()
    assert "jupyter-workflows-summary" in page and "line-7" in page
