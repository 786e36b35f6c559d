"""`workflow run -p NAME VALUE -y YAML`: typed run parameters for ${params.NAME} and for
every notebook task, as papermill takes them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import cli, write_workflow
from tests.tasks.test_notebook import RECORD, notebook


def params_workflow(root: Path) -> dict:
    notebook(
        root / "typed.ipynb",
        RECORD + "record('n_type', type(n).__name__)\nrecord('n', n)\nrecord('region', region)",
        parameters="n = 0\nregion = 'none'",
    )
    return {
        "name": "params",
        "tasks": [
            {"id": "say", "type": "shell", "command": "echo n=${params.n} in ${params.region}"},
            {"id": "nb", "type": "notebook", "notebook": "typed.ipynb"},
            {"id": "own", "type": "notebook", "notebook": "typed.ipynb",
             "parameters": {"region": "task-${params.region}"}},
        ],
    }  # fmt: skip


@pytest.mark.slow
def test_p_is_typed_and_reaches_templates_and_notebooks(project: Path) -> None:
    write_workflow(project, params_workflow(project))
    done = cli(project, "run", "wf.json", "-p", "n", "5", "-y", "{region: eu, n: 1}", "--json")
    assert done.returncode == 0, done.stderr
    tasks = {t["id"]: t for t in json.loads(done.stdout)["tasks"]}
    assert tasks["say"]["result"] == "n=5 in eu"  # -p wins over -y
    assert tasks["nb"]["outputs"] == {"n_type": "int", "n": 5, "region": "eu"}
    assert tasks["own"]["outputs"]["region"] == "task-eu"  # the task's own parameters win


def test_a_bad_parameter_is_an_error_that_says_what_was_expected(project: Path) -> None:
    task = {"id": "t", "type": "shell", "command": "true"}
    write_workflow(project, {"name": "p", "tasks": [task]})
    done = cli(project, "run", "wf.json", "-y", "[1, 2]")
    assert done.returncode == 2, done.stdout + done.stderr
    assert "expected a mapping such as -y 'n: 5'" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_parameter_not_given_fails_the_task_naming_it(project: Path) -> None:
    write_workflow(
        project,
        {"name": "p", "tasks": [{"id": "t", "type": "shell", "command": "echo ${params.size}"}]},
    )
    done = cli(project, "run", "wf.json", "-p", "n", "1", "--json")
    assert done.returncode != 0
    [task] = json.loads(done.stdout)["tasks"]
    error = task["error"]
    assert "no parameter 'size' (given: n): pass it with -p size VALUE" in error
