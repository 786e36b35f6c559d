"""Resuming a run through the real ``workflow`` command: what runs again, what is reused."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import cli, write_workflow


def _counted(task_id: str, command: str, **more: Any) -> dict[str, Any]:
    """A shell task that appends a line to runs_<id> each time it really runs."""
    return {"id": task_id, "type": "shell", "command": f"echo x >> runs_{task_id}; {command}",
            **more}  # fmt: skip


def runs(project: Path, task_id: str) -> int:
    path = project / f"runs_{task_id}"
    return len(path.read_text().splitlines()) if path.exists() else 0


def chain(gate: str = "test -f go") -> dict[str, Any]:
    return {
        "name": "chain",
        "tasks": [
            _counted("a", "echo alpha"),
            _counted("b", f"{gate} && echo got-${{tasks.a.result}}", depends_on=["a"]),
            _counted("c", "echo c-saw-${tasks.b.result}", depends_on=["b"]),
        ],
    }


def last(project: Path) -> dict[str, Any]:
    rows = json.loads(cli(project, "history", "--json", "--limit", "1").stdout)
    return json.loads(cli(project, "status", rows[0]["id"], "--json").stdout)


def tasks_of(execution: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {t["id"]: t for t in execution["tasks"]}


def test_a_failed_run_resumed_reruns_only_what_did_not_succeed(project: Path) -> None:
    write_workflow(project, chain())
    assert cli(project, "run", "wf.json").returncode == 1
    first = last(project)
    (project / "go").touch()
    result = cli(project, "resume", first["id"][:8])
    assert result.returncode == 0, result.stderr
    assert f"a reused from execution {first['id'][:8]}" in result.stdout
    assert (runs(project, "a"), runs(project, "b"), runs(project, "c")) == (1, 2, 1)
    second = last(project)
    assert second["resumed_from"] == first["id"]
    tasks = tasks_of(second)
    assert tasks["a"]["status"] == "succeeded" and tasks["a"]["reused"] == "resumed"
    assert tasks["a"]["reused_from"] == first["id"] and tasks["a"]["attempts"] == []
    assert tasks["a"]["result"] == "alpha"
    assert tasks["b"]["reused"] is None and tasks["b"]["result"] == "got-alpha"
    assert tasks["c"]["result"] == "c-saw-got-alpha"
    status = cli(project, "status", second["id"]).stdout
    assert f"resumed from: {first['id']}" in status and "resumed" in status
    history = cli(project, "history").stdout
    assert first["id"][:8] in history and "resumed from" in history


def test_a_resumed_succeeded_run_reuses_everything(project: Path) -> None:
    (project / "go").touch()
    write_workflow(project, chain())
    assert cli(project, "run", "wf.json").returncode == 0
    first = last(project)
    result = cli(project, "run", "wf.json", "--resume", first["id"])
    assert result.returncode == 0, result.stderr
    assert (runs(project, "a"), runs(project, "b"), runs(project, "c")) == (1, 1, 1)
    assert "3 resumed" in result.stdout


def test_from_reruns_the_task_and_everything_downstream(project: Path) -> None:
    (project / "go").touch()
    write_workflow(project, chain())
    cli(project, "run", "wf.json")
    first = last(project)
    result = cli(project, "resume", first["id"], "--from", "b")
    assert result.returncode == 0, result.stderr
    assert (runs(project, "a"), runs(project, "b"), runs(project, "c")) == (1, 2, 2)
    tasks = tasks_of(last(project))
    assert tasks["a"]["reused"] == "resumed" and tasks["c"]["result"] == "c-saw-got-alpha"


def test_only_runs_one_task_with_upstream_values_from_the_old_run(project: Path) -> None:
    (project / "go").touch()
    write_workflow(project, chain())
    cli(project, "run", "wf.json")
    first = last(project)
    result = cli(project, "resume", first["id"], "--only", "b")
    assert result.returncode == 0, result.stderr
    assert (runs(project, "a"), runs(project, "b"), runs(project, "c")) == (1, 2, 1)
    tasks = tasks_of(last(project))
    assert tasks["a"]["reused"] == "resumed"
    assert tasks["b"]["result"] == "got-alpha" and tasks["b"]["reused"] is None
    assert tasks["c"]["status"] == "skipped" and "--only b" in tasks["c"]["error"]


def test_an_edited_task_runs_again_and_so_does_everything_downstream(project: Path) -> None:
    (project / "go").touch()
    data = chain()
    write_workflow(project, data)
    cli(project, "run", "wf.json")
    first = last(project)
    data["tasks"][1]["command"] += " # edited"
    data["tasks"][0]["timeout"] = 60  # how it runs, not what it computes: still reused
    write_workflow(project, data)
    assert cli(project, "resume", first["id"]).returncode == 0
    assert (runs(project, "a"), runs(project, "b"), runs(project, "c")) == (1, 2, 2)


@pytest.mark.parametrize(
    ("setup", "args", "expected"),
    [
        ("other", [], "it is a run of workflow 'other', not of 'chain'"),
        ("same", ["--from", "nope"], "--from: the workflow has no task 'nope' (a, b, c)"),
        ("same", ["--only", "zzz"], "--only: the workflow has no task 'zzz'"),
        ("same", ["--from", "a", "--only", "b"], "give --from or --only, not both"),
        ("unknown", [], "no execution with id 'ffffffff'"),
    ],
)
def test_a_resume_that_cannot_be_done_is_refused_before_anything_runs(
    project: Path, setup: str, args: list[str], expected: str
) -> None:
    (project / "go").touch()
    other = {"name": "other", "tasks": [_counted("x", "true")]}
    write_workflow(project, other if setup == "other" else chain(), "old.json")
    cli(project, "run", "old.json")
    old_id = "ffffffff" if setup == "unknown" else last(project)["id"]
    write_workflow(project, chain())
    before = runs(project, "a")
    result = cli(project, "run", "wf.json", "--resume", old_id, *args)
    assert result.returncode in (1, 2)
    assert expected in result.stderr and "Traceback" not in result.stderr
    assert runs(project, "a") == before
    assert len(json.loads(cli(project, "history", "--json").stdout)) == 1  # nothing recorded


def test_from_without_resume_is_a_usage_error(project: Path) -> None:
    write_workflow(project, chain())
    result = cli(project, "run", "wf.json", "--from", "b")
    assert result.returncode == 2 and "give --resume" in result.stderr


def test_a_killed_run_resumed_runs_only_the_remaining_tasks(project: Path) -> None:
    """SIGKILL the runner while task 2 sleeps; the next read marks the run crashed; the resume
    reuses task 1 (not executed again) and runs 2 and 3, which see task 1's result."""
    data = {
        "name": "chain",
        "tasks": [
            _counted("one", "echo first-value"),
            _counted(
                "two",
                "touch marker; test -f go || sleep 300; echo two-saw-${tasks.one.result}",
                depends_on=["one"],
            ),  # fmt: skip
            _counted("three", "echo ${tasks.two.result}", depends_on=["two"]),
        ],
    }
    write_workflow(project, data)
    runner = subprocess.Popen(
        [sys.executable, "-m", "jupyter_workflows", "run", "wf.json"],
        cwd=project, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env={**os.environ, "PYTHONPATH": os.environ.get("PYTHONPATH", "")},
        start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while not (project / "marker").exists():
        assert time.monotonic() < deadline and runner.poll() is None, "task two never started"
        time.sleep(0.05)
    os.kill(runner.pid, signal.SIGKILL)
    runner.wait(10)
    crashed = last(project)  # this read finds the owner gone and records the crash
    assert crashed["status"] == "crashed"
    assert tasks_of(crashed)["one"]["status"] == "succeeded"
    (project / "go").touch()
    result = cli(project, "resume", crashed["id"][:8])
    assert result.returncode == 0, result.stdout + result.stderr
    assert (runs(project, "one"), runs(project, "two"), runs(project, "three")) == (1, 2, 1)
    tasks = tasks_of(last(project))
    assert tasks["one"]["reused"] == "resumed"
    assert tasks["two"]["result"] == "two-saw-first-value"
    assert tasks["three"]["result"] == "two-saw-first-value"


def test_a_running_execution_cannot_be_resumed(project: Path) -> None:
    data = {"name": "chain", "tasks": [_counted("a", "touch marker; sleep 300")]}
    write_workflow(project, data)
    runner = subprocess.Popen(
        [sys.executable, "-m", "jupyter_workflows", "run", "wf.json"],
        cwd=project, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not (project / "marker").exists():
            assert time.monotonic() < deadline and runner.poll() is None
            time.sleep(0.05)
        running = last(project)
        assert running["status"] == "running"
        result = cli(project, "resume", running["id"])
        assert result.returncode == 2
        assert "it is still running; wait for it to end" in result.stderr
    finally:
        os.killpg(runner.pid, signal.SIGINT)
        runner.wait(30)


def _with_parameter() -> dict[str, Any]:
    return {
        "name": "daily",
        "tasks": [
            _counted("a", "echo day=${params.day}"),
            _counted("b", "test -f go && echo ok", depends_on=["a"]),
            _counted("c", "echo c-${tasks.a.result}", depends_on=["b"]),
        ],
    }


def test_a_resume_runs_with_the_parameters_of_the_run_it_resumes(project: Path) -> None:
    write_workflow(project, _with_parameter(), "daily.json")
    first = cli(project, "run", "daily.json", "-p", "day", "2024-01-01", "--no-alerts")
    assert first.returncode == 1  # b: no go file yet
    old = last(project)
    assert old["params"] == {"day": "2024-01-01"}  # recorded, in status --json
    [row] = json.loads(cli(project, "history", "--json", "--limit", "1").stdout)
    assert row["params"] == {"day": "2024-01-01"}  # and in history --json

    (project / "go").touch()
    resumed = cli(project, "resume", old["id"], "--no-alerts")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    new = last(project)
    assert new["params"] == {"day": "2024-01-01"}
    tasks = tasks_of(new)
    assert tasks["a"]["reused"] == "resumed" and runs(project, "a") == 1
    assert tasks["c"]["result"] == "c-day=2024-01-01"


def test_a_parameter_given_to_a_resume_replaces_that_one_and_its_tasks_run_again(
    project: Path,
) -> None:
    write_workflow(project, _with_parameter(), "daily.json")
    (project / "go").touch()
    cli(project, "run", "daily.json", "-p", "day", "2024-01-01", "-p", "keep", "1", "--no-alerts")
    old = last(project)

    again = cli(project, "resume", old["id"], "-p", "day", "2024-01-02", "--no-alerts")
    assert again.returncode == 0, again.stdout + again.stderr
    new = last(project)
    assert new["params"] == {"day": "2024-01-02", "keep": 1}
    assert tasks_of(new)["a"]["result"] == "day=2024-01-02" and runs(project, "a") == 2
    assert tasks_of(new)["c"]["result"] == "c-day=2024-01-02"


# A secret's value is masked (***) wherever a run records it, its parameters included. A task
# reads a parameter as given (the first run's tasks saw the value), so a resume cannot take a
# masked one from the record. (Results are different: downstream tasks of any run see them
# masked, so a reused result is what a fresh run would hand on.)
_SECRET_ENV = {"DB_PASSWORD": "hunter22"}


def test_a_parameter_recorded_masked_must_be_given_again(project: Path) -> None:
    workflow = _with_parameter()
    workflow["secrets"] = ["DB_PASSWORD"]
    write_workflow(project, workflow, "daily.json")
    first = cli(project, "run", "daily.json", "-p", "day", "x-hunter22", "--no-alerts",
                env=_SECRET_ENV)  # fmt: skip
    assert first.returncode == 1  # b: no go file yet
    assert "parameter 'day' holds a secret's value" in first.stderr
    old = last(project)
    assert old["params"] == {"day": "x-***"}
    (project / "go").touch()

    refused = cli(project, "resume", old["id"], "--no-alerts", env=_SECRET_ENV)
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "parameter 'day' was recorded masked" in refused.stderr
    assert "-p day VALUE" in refused.stderr
    assert runs(project, "b") == 1  # nothing ran

    given = cli(project, "resume", old["id"], "-p", "day", "x-hunter22", "--no-alerts",
                env=_SECRET_ENV)  # fmt: skip
    assert given.returncode == 0, given.stdout + given.stderr
    assert runs(project, "a") == 1  # its definition and parameter are the same: reused
