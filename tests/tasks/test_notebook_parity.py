"""notebook tasks behave as papermill does, on notebooks in the styles of papermill's own tests.

Each fixture in ``tests/fixtures/notebooks/`` runs twice: with ``papermill.execute_notebook``
and as a notebook task of one workflow run by the real ``workflow run`` command. The executed
copies are then compared: outcome, banner cells, cells, outputs, metadata.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import nbformat
import pytest

from jupyter_workflows.execution.states import State
from jupyter_workflows.store import ExecutionStore, default_store_path
from jupyter_workflows.tasks.notebook.document import ERROR_TAG
from tests.conftest import cli, write_workflow

FIXTURES = Path(__file__).parents[1] / "fixtures" / "notebooks"
# fixture -> (papermill's kernel_name, parameters, does the run fail?)
STYLES: dict[str, tuple[str | None, dict[str, Any], bool]] = {
    "python_kernelspec": (None, {"n": 4}, False),
    "stale_error_markers": (None, {}, True),
    "sysexit0": (None, {}, False),
    # papermill needs a kernel name for a notebook without a kernelspec; we use the default.
    "no_kernelspec": ("python3", {}, False),
}
TIMES = ("start_time", "end_time", "duration")


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Every style run by papermill and by one `workflow run`: executed notebooks and records."""
    import papermill
    from papermill.exceptions import PapermillExecutionError

    project = tmp_path_factory.mktemp("parity") / "project"
    shutil.copytree(FIXTURES, project / "in")
    papermill_out, papermill_failed = project / "papermill", {}
    papermill_out.mkdir()
    for name, (kernel, parameters, _) in STYLES.items():
        try:
            papermill.execute_notebook(
                str(project / "in" / f"{name}.ipynb"),
                str(papermill_out / f"{name}.ipynb"),
                parameters=parameters,
                kernel_name=kernel,
                progress_bar=False,
                cwd=str(project),
            )
            papermill_failed[name] = False
        except PapermillExecutionError:
            papermill_failed[name] = True
    tasks = [
        {
            "id": name,
            "type": "notebook",
            "notebook": f"in/{name}.ipynb",
            "parameters": parameters,
            "output": f"ours/{name}.ipynb",
        }
        for name, (_, parameters, _) in STYLES.items()
    ]
    write_workflow(project, {"name": "parity", "tasks": tasks})
    done = cli(project, "run", "wf.json")
    [row] = ExecutionStore(default_store_path(project)).history()
    execution = ExecutionStore(default_store_path(project)).get_execution(row.id, logs=50)
    return {
        "project": project,
        "exit_code": done.returncode,
        "papermill_failed": papermill_failed,
        "tasks": execution.tasks,
    }


def read(path: Path) -> Any:
    return nbformat.read(str(path), as_version=4)


def outputs(cell: Any) -> list[dict[str, Any]]:
    """A cell's outputs as JSON, without what differs from run to run for papermill too."""
    found = []
    for output in cell.get("outputs", []):
        output = json.loads(json.dumps(output))
        output.pop("execution_count", None)
        found.append(output)
    return found


@pytest.mark.parametrize("name", list(STYLES))
def test_a_notebook_task_runs_a_notebook_as_papermill_does(runs: dict[str, Any], name: str):
    project, task = runs["project"], runs["tasks"][name]
    fails = STYLES[name][2]
    assert runs["papermill_failed"][name] is fails
    assert task.status is (State.FAILED if fails else State.SUCCEEDED), task.error
    theirs = read(project / "papermill" / f"{name}.ipynb")
    ours = read(project / "ours" / f"{name}.ipynb")

    # One banner at the top and an anchor right before the failing cell, or none at all.
    def banners(nb: Any) -> list[int]:
        return [i for i, c in enumerate(nb.cells) if ERROR_TAG in c.metadata.get("tags", [])]

    assert banners(ours) == banners(theirs) == ([0, banners(theirs)[1]] if fails else [])
    assert [(c.cell_type, c.source) for c in ours.cells] == [
        (c.cell_type, c.source) for c in theirs.cells
    ]
    for mine, other in zip(ours.cells, theirs.cells, strict=True):
        assert outputs(mine) == outputs(other), mine.source
        assert mine.get("execution_count") == other.get("execution_count"), mine.source
        assert "id" in mine and "id" in other
        mine_pm, other_pm = mine.metadata.get("papermill"), other.metadata.get("papermill")
        if other_pm is None:  # the banner cells
            assert mine_pm is None
            continue
        for field in ("status", "exception"):
            assert mine_pm[field] == other_pm[field], (mine.source, field)
        for field in TIMES:
            assert (mine_pm[field] is None) == (other_pm[field] is None), (mine.source, field)
    versions = (ours.nbformat, ours.nbformat_minor), (theirs.nbformat, theirs.nbformat_minor)
    assert versions == ((4, 5), (4, 5))
    assert ours.metadata.language_info == theirs.metadata.language_info
    assert ours.metadata.language_info.version != "3.6.7"  # the kernel's, not the saved one
    assert ours.metadata.papermill.exception == theirs.metadata.papermill.exception
    assert ours.metadata.papermill.parameters == theirs.metadata.papermill.parameters


def test_the_run_fails_because_of_the_failing_notebook_only(runs: dict[str, Any]):
    assert runs["exit_code"] != 0
    failed = {name for name, task in runs["tasks"].items() if task.status is State.FAILED}
    assert failed == {"stale_error_markers"}
    error = runs["tasks"]["stale_error_markers"].error
    assert error == "cell 2/3 raised AssertionError: arithmetic"


def test_a_kernelspec_named_python_runs_on_python3(runs: dict[str, Any]):
    ours = read(runs["project"] / "ours" / "python_kernelspec.ipynb")
    assert ours.metadata.jupyter_workflows["kernel"] == "python3"
    assert ours.metadata.kernelspec.name == "python"  # the document keeps what it says


def test_a_notebook_without_a_kernelspec_runs_on_the_default_and_says_so(runs: dict[str, Any]):
    task = runs["tasks"]["no_kernelspec"]
    note = "no_kernelspec.ipynb names no kernel (no kernelspec): running it on 'python3'"
    assert note in task.log_tail
    ours = read(runs["project"] / "ours" / "no_kernelspec.ipynb")
    assert ours.metadata.jupyter_workflows["kernel"] == "python3"


def test_papermill_itself_needs_a_kernel_name_for_a_notebook_without_a_kernelspec(tmp_path):
    import papermill

    with pytest.raises(ValueError, match="No kernel name found"):
        papermill.execute_notebook(
            str(FIXTURES / "no_kernelspec.ipynb"), str(tmp_path / "out.ipynb"), progress_bar=False
        )
