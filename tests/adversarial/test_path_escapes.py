"""Paths that lead out of the project, for every task type and every field that names a path.

A project and, beside it, a folder ``outside`` with things worth reading (a secret, scripts,
a notebook, migrations) and folders worth writing to. Each field is given a path into
``outside`` five ways: absolute, ``../``, templated from ``${env...}``, templated from a
webhook payload, and through a symlink inside the project. Every such task fails before it
touches anything, with an error naming the task, the field, the path and the root; nothing in
``outside`` is created, changed or read (its scripts leave a marker when they run, the secret
would show in a result). Folders listed in ``allowedPaths`` of the project's config can be
used; a symlink from an allowed folder to elsewhere still cannot.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat
import pytest

from jupyter_workflows.execution.states import State
from jupyter_workflows.tasks.notebook.pool import KernelPool
from jupyter_workflows.tasks.notebook.runner import NotebookRunner
from tests.conftest import cli, make_workflow

SECRET = "TOP-SECRET-7f3a"
FORMS = ["absolute", "dotdot", "env", "webhook", "symlink"]
LITERAL_FORMS = ["absolute", "dotdot", "symlink"]  # for fields that are not templated


def _notebook(path: Path, source: str) -> None:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python", "language": "python"}
    nb.cells.append(nbformat.v4.new_code_cell(source))
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(path))


@dataclass
class Layout:
    root: Path
    outside: Path

    def marker(self, name: str) -> Path:
        return self.outside / "markers" / name


@pytest.fixture
def layout(project: Path) -> Layout:
    return make_layout(project)


def make_layout(project: Path) -> Layout:
    """The project's files and, beside it, ``outside`` with what is worth reaching."""
    outside = project.parent / "outside"
    (outside / "data").mkdir(parents=True)
    (outside / "data" / "secret.json").write_text(json.dumps({"secret": SECRET}))
    (outside / "markers").mkdir()
    for name in ("py", "js", "nb", "dp"):
        (outside / f"cwd_{name}").mkdir()
    (outside / "cwd_sh").mkdir()
    (outside / "script.py").write_text(
        f"open({str(outside / 'markers' / 'py')!r}, 'w').write('ran')\n"
    )
    (outside / "script.js").write_text(
        f"require('fs').writeFileSync({json.dumps(str(outside / 'markers' / 'js'))}, 'ran')\n"
    )
    (outside / "processor.py").write_text(
        f"open({str(outside / 'markers' / 'processor')!r}, 'w').write('ran')\nprint('{{}}')\n"
    )
    _notebook(outside / "nb.ipynb", f"open({str(outside / 'markers' / 'nb')!r}, 'w')")
    (outside / "migrations").mkdir()
    (outside / "migrations" / "001.sql").write_text("CREATE TABLE pwned (x INTEGER);")
    (outside / "context").mkdir()
    (outside / "context" / "Dockerfile").write_text("FROM scratch\n")
    # The project's own files, used where the field under test is another one.
    root = project
    _notebook(root / "nb.ipynb", "open('nb_cwd_marker', 'w').write('ran')")
    (root / "data").mkdir()
    (root / "data" / "a.json").write_text('{"a": 1}')
    (root / "echo.py").write_text("import sys; sys.stdout.write(sys.stdin.read())\n")
    (root / "ok.py").write_text("open('py_cwd_marker', 'w').write('ran')\n")
    (root / "ok.js").write_text("require('fs').writeFileSync('js_cwd_marker', 'ran')\n")
    (root / "link").symlink_to(outside, target_is_directory=True)
    return Layout(root, outside)


def _snapshot(folder: Path) -> dict[str, str]:
    found = {}
    for dirpath, dirnames, filenames in os.walk(folder):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "dir"
            found[str(path.relative_to(folder))] = digest
    return found


def _spell(form: str, layout: Layout, name: str, key: str) -> tuple[str, dict[str, str], Any]:
    """How ``outside/name`` is written in the given form: (path, env, payload entry)."""
    relative = f"../outside/{name}"
    if form == "absolute":
        return str(layout.outside / name), {}, None
    if form == "dotdot":
        return relative, {}, None
    if form == "env":
        return "${env.ESCAPE_" + key + "}", {f"ESCAPE_{key}": relative}, None
    if form == "webhook":
        return "${webhook.payload." + key + "}", {}, (key, relative)
    return f"link/{name}", {}, None


# (task id, field, outside name, task builder taking the spelled path, templated field?)
FIELDS: list[tuple[str, str, str, Any, bool]] = [
    ("nb_output", "output", "written.ipynb",
     lambda p: {"type": "notebook", "notebook": "nb.ipynb", "output": p}, True),
    ("nb_notebook", "notebook", "nb.ipynb",
     lambda p: {"type": "notebook", "notebook": p}, True),
    ("nb_cwd", "cwd", "cwd_nb",
     lambda p: {"type": "notebook", "notebook": "nb.ipynb", "cwd": p}, True),
    ("dp_input", "input.path", "data/*.json",
     lambda p: {"type": "data_processor", "input": {"path": p},
                "processor": {"type": "python", "script": "echo.py"}}, True),
    ("dp_output", "output.path", "out-${input}.json",
     lambda p: {"type": "data_processor", "input": {"path": "data/*.json"},
                "processor": {"type": "python", "script": "echo.py"}, "output": {"path": p}},
     True),
    ("dp_script", "processor.script", "processor.py",
     lambda p: {"type": "data_processor", "input": {"path": "data/*.json"},
                "processor": {"type": "python", "script": p}}, True),
    ("dp_cwd", "cwd", "cwd_dp",
     lambda p: {"type": "data_processor", "input": {"path": "data/*.json"},
                "processor": {"type": "python", "script": "echo.py"}, "cwd": p}, False),
    ("py_script", "script", "script.py", lambda p: {"type": "python", "script": p}, True),
    ("py_cwd", "cwd", "cwd_py", lambda p: {"type": "python", "script": "ok.py", "cwd": p}, False),
    ("js_script", "script", "script.js", lambda p: {"type": "javascript", "script": p}, True),
    ("js_cwd", "cwd", "cwd_js",
     lambda p: {"type": "javascript", "script": "ok.js", "cwd": p}, False),
    ("sh_cwd", "cwd", "cwd_sh",
     lambda p: {"type": "shell", "command": "echo ran > sh_cwd_marker", "cwd": p}, False),
    ("db_sqlite", "config.connection", "created.db",
     lambda p: {"type": "database",
                "config": {"connection": f"sqlite:///{p}", "query": "CREATE TABLE t (x)"}}, True),
    ("db_duckdb", "config.connection", "created.duckdb",
     lambda p: {"type": "database",
                "config": {"connection": f"duckdb:///{p}", "query": "CREATE TABLE t (x INT)"}},
     True),
    ("db_migrations", "config.migrations_path", "migrations",
     lambda p: {"type": "database",
                "config": {"connection": "sqlite:///inside.db", "operation": "migration",
                           "migrations_path": p}}, True),
    ("docker_context", "context", "context",
     lambda p: {"type": "docker", "context": p, "tags": ["escape:1"]}, True),
    ("docker_dockerfile", "dockerfile", "context/Dockerfile",
     lambda p: {"type": "docker", "dockerfile": p, "tags": ["escape:1"]}, True),
    ("docker_volume", "volumes[0]", "data",
     lambda p: {"type": "docker", "image": "alpine", "command": "cat /d/secret.json",
                "volumes": [f"{p}:/d:ro"]}, True),
]  # fmt: skip


def _escaping_workflow(form: str, layout: Layout) -> tuple[dict[str, Any], dict[str, str]]:
    tasks, env, payload = [], {}, {}
    for task_id, _, name, build, templated in FIELDS:
        if not templated and form not in LITERAL_FORMS:
            continue
        path, more_env, entry = _spell(form, layout, name, task_id)
        env.update(more_env)
        if entry is not None:
            payload[entry[0]] = entry[1]
        tasks.append({"id": task_id, "continue_on_error": True, **build(path)})
    if payload:
        env["WEBHOOK_PAYLOAD"] = json.dumps(payload)
    return {"name": f"escape-{form}", "tasks": tasks}, env


@pytest.fixture(scope="module")
def kernels() -> Iterator[KernelPool]:
    from jupyter_workflows.tasks import registry

    pool = KernelPool(spares=0)
    registry.register("notebook", NotebookRunner(pool))
    yield pool
    registry.register("notebook", NotebookRunner())
    pool.shutdown()


@pytest.mark.parametrize("form", FORMS)
def test_no_task_reads_or_writes_outside_the_project(form, layout, run_workflow, kernels):
    workflow, env = _escaping_workflow(form, layout)
    before = _snapshot(layout.outside)
    execution = run_workflow(make_workflow(*workflow["tasks"], name=workflow["name"]), env=env)
    escaped = []
    for task_id, field, _, _, _ in FIELDS:
        task = execution.tasks.get(task_id)
        if task is None:
            continue
        error = task.error or ""
        refused = (
            task.status is State.FAILED
            and f"task '{task_id}'" in error
            and f"field '{field}'" in error
            and "outside the project" in error
            and str(layout.root) in error
            and "allowedPaths" in error
        )
        if not refused:
            escaped.append((task_id, str(task.status), error[:300]))
        if SECRET in json.dumps(task.to_dict(), default=str):
            escaped.append((task_id, "read the secret", ""))
    changed = sorted(set(_snapshot(layout.outside).items()) ^ set(before.items()))
    assert (escaped, changed) == ([], [])  # nothing written, no script or notebook ran
    # The project's own markers say the cwd tasks did not run elsewhere instead.
    assert not any(layout.root.glob("*_marker"))


def test_allowed_paths_in_the_config_open_those_folders_and_no_others(
    layout, run_workflow, tmp_path
):
    shared = tmp_path / "shared"
    (shared / "in").mkdir(parents=True)
    (shared / "in" / "x.json").write_text('{"x": 1}')
    (shared / "escape").symlink_to(layout.outside, target_is_directory=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    config = layout.root / "workflows" / "config.json"
    config.parent.mkdir()
    config.write_text(json.dumps({"allowedPaths": ["../shared", str(elsewhere)]}))
    before = _snapshot(layout.outside)
    processor = {"type": "python", "script": "echo.py"}
    execution = run_workflow(
        make_workflow(
            {
                "id": "relative",
                "type": "data_processor",
                "input": {"path": "../shared/in/*.json"},
                "processor": processor,
                "output": {"path": str(shared / "out-${input}.json")},
            },
            {
                "id": "absolute",
                "type": "database",
                "config": {"connection": "sqlite:///${env.DB}", "query": "CREATE TABLE t (x)"},
            },
            {"id": "shell", "type": "shell", "command": "echo ok > here", "cwd": str(elsewhere)},
            {
                "id": "through",
                "type": "data_processor",
                "continue_on_error": True,
                "input": {"path": "data/*.json"},
                "processor": processor,
                "output": {"path": str(shared / "escape" / "out.json")},
            },
        ),  # fmt: skip
        env={"DB": str(elsewhere / "new.db")},
    )
    for task_id in ("relative", "absolute", "shell"):
        assert execution.tasks[task_id].status is State.SUCCEEDED, execution.tasks[task_id].error
    assert json.loads((shared / "out-x.json").read_text()) == {"x": 1}
    assert (elsewhere / "new.db").is_file() and (elsewhere / "here").is_file()
    through = execution.tasks["through"]
    assert through.status is State.FAILED and "outside the project" in through.error
    assert _snapshot(layout.outside) == before


def test_a_broken_allowed_paths_setting_is_named(layout, run_workflow):
    config = layout.root / "workflows" / "config.json"
    config.parent.mkdir()
    config.write_text(json.dumps({"allowedPaths": "/tmp"}))
    execution = run_workflow(make_workflow({"id": "a", "type": "python", "script": "ok.py"}))
    error = execution.tasks["a"].error or ""
    assert execution.tasks["a"].status is State.FAILED
    assert str(config) in error and "'allowedPaths' must be a list" in error
    (layout.root / "wf.json").write_text(json.dumps({"name": "x", "tasks": []}))
    result = cli(layout.root, "validate", "wf.json")
    assert result.returncode == 2 and "'allowedPaths' must be a list" in result.stderr


def test_validate_reports_literal_escapes_with_their_place(layout):
    workflow, _ = _escaping_workflow("dotdot", layout)
    workflow["tasks"].append(
        {"id": "templated", "type": "python", "script": "${env.SCRIPT}"}  # run time only
    )
    workflow["tasks"].append(
        {"id": "nested", "type": "loop", "items": [1],
         "then": {"type": "python", "script": str(layout.outside / "script.py")}}
    )  # fmt: skip
    path = layout.root / "escape.json"
    path.write_text(json.dumps(workflow, indent=2))
    result = cli(layout.root, "validate", "--json", str(path))
    assert result.returncode == 1, result.stderr
    (report,) = json.loads(result.stdout)
    found = {(p["task_id"], p["field"]) for p in report["problems"]}
    expected = {(task_id, field) for task_id, field, _, _, _ in FIELDS}
    expected.discard(("dp_output", "output.path"))  # ${input} in it: checked at run time
    expected.add(("nested", "then.script"))
    assert found == expected
    assert all(p["line"] and "outside the project" in p["message"] for p in report["problems"])
    # The same file is valid once the folder is allowed.
    config = layout.root / "workflows" / "config.json"
    config.parent.mkdir()
    config.write_text(json.dumps({"allowedPaths": ["../outside"]}))
    result = cli(layout.root, "validate", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
    shutil.rmtree(config.parent)
