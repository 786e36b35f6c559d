"""python tasks: script or code, arguments, and the interpreter of VIRTUAL_ENV."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from jupyter_workflows.execution.states import State
from tests.conftest import make_workflow


def test_script_with_templated_args_runs_in_the_project_root(project, run_workflow):
    (project / "scripts").mkdir()
    (project / "scripts" / "echo.py").write_text(
        "import json, os, sys; print(json.dumps({'argv': sys.argv[1:], 'cwd': os.getcwd()}))"
    )
    execution = run_workflow(
        make_workflow(
            {"id": "s", "type": "python", "script": "scripts/echo.py", "args": ["${env.A}", "b c"]}
        ),
        env={"A": "$(rm -rf /)"},
    )
    result = execution.tasks["s"].result
    assert result == {"argv": ["$(rm -rf /)", "b c"], "cwd": str(project)}


def test_inline_code_runs_in_this_interpreter_by_default(run_workflow):
    execution = run_workflow(
        make_workflow({"id": "c", "type": "python", "code": "import sys; print(sys.executable)"})
    )
    assert execution.tasks["c"].result == sys.executable


@pytest.fixture(scope="module")
def venv(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("venv") / "env"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True)
    return path


def test_virtual_env_in_the_task_environment_picks_its_interpreter(run_workflow, venv):
    execution = run_workflow(
        make_workflow(
            {
                "id": "v",
                "type": "python",
                "code": "import sys; print(sys.prefix)",
                "environment": {"VIRTUAL_ENV": str(venv)},
            }
        )
    )
    assert Path(execution.tasks["v"].result).resolve() == venv.resolve()


def test_a_virtual_env_without_python_is_a_clear_failure(run_workflow, tmp_path):
    execution = run_workflow(
        make_workflow(
            {
                "id": "v",
                "type": "python",
                "code": "print(1)",
                "environment": {"VIRTUAL_ENV": str(tmp_path / "no-such-venv")},
            }
        )
    )
    task = execution.tasks["v"]
    assert (
        task.status is State.FAILED and "no-such-venv" in task.error and "bin/python" in task.error
    )


def test_missing_script_names_the_path(project, run_workflow):
    execution = run_workflow(make_workflow({"id": "m", "type": "python", "script": "nope.py"}))
    task = execution.tasks["m"]
    assert task.status is State.FAILED and str(project / "nope.py") in task.error
