"""javascript tasks: node for .js, tsx for TypeScript, and a clear error when tsx is missing."""

from __future__ import annotations

import shutil
import stat

import pytest

from jupyter_workflows.execution.states import State
from tests.conftest import make_workflow

pytestmark = pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")


def test_js_script_gets_args_env_and_its_result_parsed(project, run_workflow):
    (project / "scripts").mkdir()
    (project / "scripts" / "gen.js").write_text(
        "const out = process.env.WORKFLOW_OUTPUT !== undefined;\n"
        "console.log(JSON.stringify({args: process.argv.slice(2), out}))"
    )
    execution = run_workflow(
        make_workflow(
            {"id": "gen", "type": "javascript", "script": "scripts/gen.js", "args": ["${env.X}"]}
        ),
        env={"X": "a; b"},
    )
    assert execution.tasks["gen"].result == {"args": ["a; b"], "out": True}


def test_typescript_without_tsx_fails_saying_how_to_get_it(project, run_workflow):
    path = "/usr/bin:/bin"  # node is there; a global tsx would not be
    if shutil.which("tsx", path=path):
        pytest.skip("tsx is installed system-wide")
    (project / "gen.ts").write_text("const x: number = 1; console.log(x)")
    execution = run_workflow(
        make_workflow({"id": "ts", "type": "javascript", "script": "gen.ts"}), env={"PATH": path}
    )
    task = execution.tasks["ts"]
    assert task.status is State.FAILED
    assert "tsx" in task.error and "npm install --save-dev tsx" in task.error


def test_typescript_runs_through_a_project_local_tsx(project, run_workflow):
    # A stand-in tsx in node_modules/.bin proves the lookup order and the argv it receives.
    bin_dir = project / "node_modules" / ".bin"
    bin_dir.mkdir(parents=True)
    tsx = bin_dir / "tsx"
    tsx.write_text('#!/bin/sh\necho "tsx ran $(basename "$1")"\n')
    tsx.chmod(tsx.stat().st_mode | stat.S_IEXEC)
    (project / "gen.ts").write_text("console.log(1)")
    execution = run_workflow(make_workflow({"id": "ts", "type": "javascript", "script": "gen.ts"}))
    assert execution.tasks["ts"].result == "tsx ran gen.ts"
