"""The `workflow` command as users run it: real processes, a real store in a temp project."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import cli, write_workflow


def shell(task_id: str, command: str, **fields):
    return {"id": task_id, "type": "shell", "command": command, **fields}


def simple(*tasks, name="cli-test"):
    return {"name": name, "tasks": list(tasks)}


def test_run_success_prints_progress_and_exits_0(project):
    write_workflow(project, simple(shell("hello", "echo hello", live_output=True)))
    result = cli(project, "run", "wf.json")
    assert result.returncode == 0, result.stderr
    assert "hello | hello" in result.stdout  # live output streamed, plain lines when piped
    assert "✓ hello succeeded" in result.stdout
    assert "workflow 'cli-test' succeeded" in result.stdout
    assert "\x1b[" not in result.stdout  # no terminal escapes in a pipe


def test_run_failure_exits_1_and_shows_last_output(project):
    write_workflow(project, simple(shell("bad", "echo why-it-broke; exit 3")))
    result = cli(project, "run", "wf.json")
    assert result.returncode == 1
    assert "✗ bad failed" in result.stdout and "why-it-broke" in result.stdout


def test_run_env_option_reaches_templates(project):
    write_workflow(project, simple(shell("a", "echo ${env.A}-${env.B}")))
    result = cli(project, "run", "wf.json", "--env", "A=1,B=x,y", "--json")
    assert result.returncode == 0, result.stderr
    execution = json.loads(result.stdout)
    assert execution["status"] == "succeeded"
    assert execution["tasks"][0]["result"] == "1-x,y"


@pytest.mark.parametrize("bad", ["NOEQUALS", "=x", "1A=b"])
def test_bad_env_syntax_is_one_clear_line(project, bad):
    write_workflow(project, simple(shell("a", "true")))
    result = cli(project, "run", "wf.json", "--env", bad)
    assert result.returncode == 2
    assert result.stderr.startswith("error: bad --env value")
    assert "Traceback" not in result.stderr


def test_missing_file_is_one_clear_line(project):
    result = cli(project, "run", "nope.json")
    assert result.returncode == 2
    assert "nope.json" in result.stderr and "Traceback" not in result.stderr


def test_invalid_definition_exits_2_with_located_problems(project):
    write_workflow(project, simple(shell("a", "true", depends_on=["ghost"])))
    result = cli(project, "run", "wf.json")
    assert result.returncode == 2
    assert "ghost" in result.stderr and "Traceback" not in result.stderr


def test_dry_run_prints_plan_and_runs_nothing(project):
    marker = project / "ran"
    write_workflow(
        project,
        simple(
            shell("first", f"touch {marker}"),
            shell(
                "deploy",
                "echo deploying to ${env.TARGET}",
                depends_on=["first"],
                condition="${env.DEPLOY} == 'true'",
            ),
            shell("report", "echo ${tasks.first.result}", depends_on=["first"]),
        ),  # fmt: skip
    )
    result = cli(project, "run", "wf.json", "--dry-run", "--env", "TARGET=prod,DEPLOY=false")
    assert result.returncode == 0, result.stderr
    assert not marker.exists()
    out = result.stdout
    assert out.index("wave 1") < out.index("first") < out.index("wave 2") < out.index("deploy")
    assert "command for /bin/sh -c: \"echo deploying to 'prod'\"" in out and "SKIPPED" in out
    assert "${tasks.first.result}" in out


def test_dry_run_of_a_database_task_hides_the_password(project):
    task = {
        "id": "q",
        "type": "database",
        "config": {"connection": "postgresql://me:${env.PW}@127.0.0.1/db", "query": "select 1"},
    }
    write_workflow(project, simple(task))
    result = cli(project, "run", "wf.json", "--dry-run", "--env", "PW=hunter2")
    assert result.returncode == 0, result.stderr
    assert "query on postgresql://me:***@127.0.0.1/db" in result.stdout
    assert "hunter2" not in result.stdout


def test_validate_reports_and_exit_codes(project):
    good = write_workflow(project, simple(shell("a", "true")), "good.json")
    bad = write_workflow(project, simple(shell("a", "true"), shell("a", "true")), "bad.json")
    ok = cli(project, "validate", str(good))
    assert ok.returncode == 0 and "valid" in ok.stdout
    both = cli(project, "validate", str(good), str(bad))
    assert both.returncode == 1
    assert "duplicate" in (both.stdout + both.stderr).lower()


def test_schema_is_json_schema_of_the_model(project):
    result = cli(project, "schema")
    schema = json.loads(result.stdout)
    assert schema["title"] and "tasks" in schema["properties"]
    assert "shell" in result.stdout and "notebook" in result.stdout


def test_history_and_status_with_prefix_and_json(project):
    write_workflow(project, simple(shell("a", "echo first-line; echo second-line")))
    assert cli(project, "run", "wf.json").returncode == 0
    history = json.loads(cli(project, "history", "--json").stdout)
    assert len(history) == 1 and history[0]["status"] == "succeeded"
    execution_id = history[0]["id"]
    status = cli(project, "status", execution_id[:6])
    assert status.returncode == 0, status.stderr
    assert execution_id in status.stdout and "second-line" in status.stdout
    detail = json.loads(cli(project, "status", execution_id, "--json").stdout)
    assert detail["tasks"][0]["attempts"][0]["exit_code"] == 0


def test_history_filters_by_workflow(project):
    write_workflow(project, simple(shell("a", "true"), name="one"), "one.json")
    write_workflow(project, simple(shell("a", "true"), name="two"), "two.json")
    cli(project, "run", "one.json")
    cli(project, "run", "two.json")
    rows = json.loads(cli(project, "history", "--workflow", "two", "--json").stdout)
    assert [r["workflow"] for r in rows] == ["two"]


def test_history_since_filters_by_start_time_and_rejects_bad_values(project):
    write_workflow(project, simple(shell("a", "true")))
    assert cli(project, "run", "wf.json").returncode == 0
    recent = json.loads(cli(project, "history", "--since", "1h", "--json").stdout)
    assert len(recent) == 1
    future = json.loads(cli(project, "history", "--since", "2999-01-01", "--json").stdout)
    assert future == []
    bad = cli(project, "history", "--since", "soon")
    assert bad.returncode == 2 and "Invalid value for '--since': 'soon' is neither" in bad.stderr
    assert "Traceback" not in bad.stderr
    for command in ("history", "monitor"):  # one format wherever --since is read
        other = cli(project, command, "--since", "soon")
        assert other.returncode == 2
        assert other.stderr.splitlines()[-1] == bad.stderr.splitlines()[-1]
    wrong_state = cli(project, "history", "--status", "nope")
    assert wrong_state.returncode == 2 and "'nope' is not one of 'pending'" in wrong_state.stderr


def test_unknown_execution_id_is_one_clear_line(project):
    result = cli(project, "status", "doesnotexist")
    assert result.returncode == 1
    assert "doesnotexist" in result.stderr and "Traceback" not in result.stderr


def _start_run(project: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "jupyter_workflows", "run", "wf.json"],
        cwd=project,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for(path: Path, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.02)


def test_sigint_cancels_the_run_and_records_it(project):
    started = project / "started"
    write_workflow(project, simple(shell("long", f"touch {started}; sleep 30")))
    proc = _start_run(project)
    _wait_for(started)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=15)
    assert proc.returncode == 130, err
    [row] = json.loads(cli(project, "history", "--json").stdout)
    assert row["status"] == "cancelled"
    detail = json.loads(cli(project, "status", row["id"], "--json").stdout)
    assert detail["tasks"][0]["status"] == "cancelled"


def test_sigkill_of_the_runner_is_recorded_as_crashed(project):
    started = project / "started"
    write_workflow(project, simple(shell("long", f"touch {started}; sleep 30")))
    proc = _start_run(project)
    _wait_for(started)
    proc.kill()
    proc.wait()
    [row] = json.loads(cli(project, "history", "--json").stdout)
    assert row["status"] == "crashed"
    detail = json.loads(cli(project, "status", row["id"], "--json").stdout)
    assert detail["tasks"][0]["status"] == "crashed"


def test_four_processes_recording_at_once_lose_nothing(project):
    write_workflow(project, simple(*(shell(f"t{i}", "echo x") for i in range(10))))
    for _round in range(2):  # 4 runners at once, twice
        procs = [_start_run(project) for _ in range(4)]
        for proc in procs:
            _, err = proc.communicate(timeout=60)
            assert proc.returncode == 0, err
    rows = json.loads(cli(project, "history", "--limit", "100", "--json").stdout)
    assert len(rows) == 8
    assert all(r["status"] == "succeeded" and r["task_count"] == 10 for r in rows)


def test_jupyter_workflows_script_is_installed_too(project):
    scripts = Path(sys.executable).parent
    assert (scripts / "workflow").exists() and (scripts / "jupyter-workflows").exists()
    command = [str(scripts / "jupyter-workflows"), "--help"]
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode == 0 and "validate" in result.stdout


def test_project_root_option(tmp_path):
    root = tmp_path / "elsewhere"
    root.mkdir()
    write_workflow(root, simple(shell("a", "pwd")))
    result = cli(tmp_path, "--project-root", str(root), "run", str(root / "wf.json"), "--json")
    assert json.loads(result.stdout)["tasks"][0]["result"] == str(root.resolve())
    assert (root / "workflows" / ".executions").is_dir()
    assert os.listdir(tmp_path) == ["elsewhere"]


def snapshot(folder: Path) -> dict[str, tuple[int, bytes]]:
    """Every path under ``folder`` with its mode and, for files, its bytes."""
    found = {}
    for path in sorted(folder.rglob("*")):
        data = path.read_bytes() if path.is_file() else b""
        found[path.relative_to(folder).as_posix()] = (path.stat().st_mode, data)
    return found


def test_the_project_is_found_from_a_sub_folder(project):
    definitions = project / "workflows" / "definitions"
    definitions.mkdir(parents=True)
    write_workflow(definitions, simple(shell("a", "pwd")))
    sub = project / "notebooks" / "deeper"
    sub.mkdir(parents=True)
    result = cli(sub, "run", "../../workflows/definitions/wf.json", "--json")
    assert result.returncode == 0, result.stderr
    ran = json.loads(result.stdout)
    assert ran["tasks"][0]["result"] == str(project.resolve())  # tasks run in the root
    assert ran["file"] == str(definitions / "wf.json")
    assert os.listdir(sub) == []
    listed = cli(sub, "history", "--json")
    assert [r["id"] for r in json.loads(listed.stdout)] == [ran["id"]]
    assert [r["id"] for r in json.loads(cli(project, "history", "--json").stdout)] == [ran["id"]]


def test_the_environment_names_the_root_and_the_option_wins_over_it(project, tmp_path):
    env_root, option_root = tmp_path / "env-root", tmp_path / "option-root"
    env_root.mkdir()
    option_root.mkdir()
    write_workflow(project, simple(shell("a", "pwd")))
    env = {"WORKFLOW_PROJECT_ROOT": str(env_root)}
    by_env = json.loads(cli(project, "run", "wf.json", "--json", env=env).stdout)
    assert by_env["tasks"][0]["result"] == str(env_root.resolve())
    option = ["--project-root", str(option_root)]
    by_option = json.loads(cli(project, *option, "run", "wf.json", "--json", env=env).stdout)
    assert by_option["tasks"][0]["result"] == str(option_root.resolve())
    history = json.loads(cli(project, "history", "--json", env=env).stdout)
    assert [r["id"] for r in history] == [by_env["id"]]
    assert sorted(os.listdir(project)) == ["wf.json"]
    missing = cli(project, "history", env={"WORKFLOW_PROJECT_ROOT": str(tmp_path / "nope")})
    assert missing.returncode == 2 and "is not a directory" in missing.stderr


def test_file_arguments_are_relative_to_the_cwd_with_the_root_elsewhere(project, tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    write_workflow(project, simple(shell("a", "echo from-cwd")))
    write_workflow(root, simple(shell("a", "echo from-root")))
    option = ["--project-root", str(root)]
    result = cli(project, *option, "run", "wf.json", "--json")
    assert json.loads(result.stdout)["tasks"][0]["result"] == "from-cwd"
    assert cli(project, *option, "run", "wf.json", "--dry-run").returncode == 0
    assert cli(project, *option, "serve", "--workflow", "nope.json", "--path", "/x").returncode == 2
    (project / "wf.json").unlink()
    missing = cli(project, *option, "run", "wf.json")
    assert missing.returncode == 2
    assert "wf.json: no such workflow file" in missing.stderr
    assert str(root / "wf.json") in missing.stderr  # the hint: the file it meant before


READ_ONLY = [
    ("history",),
    ("history", "--json", "--workflow", "x"),
    ("status", "abc"),
    ("status", "abc", "--json"),
    ("monitor",),
    ("monitor", "--json"),
    ("monitor", "--live", "--frames", "1", "--interval", "0.1"),
    ("cleanup", "--dry-run"),
    ("cleanup", "--json"),
    ("validate", "workflows/definitions/wf.json"),
]


@pytest.mark.parametrize("with_definitions", [False, True], ids=["empty", "no-store-yet"])
def test_read_only_commands_create_nothing(project, with_definitions):
    if with_definitions:
        (project / "workflows" / "definitions").mkdir(parents=True)
        write_workflow(project / "workflows" / "definitions", simple(shell("a", "true")))
    before = snapshot(project)
    for args in READ_ONLY:
        result = cli(project, *args)
        assert "Traceback" not in result.stderr, (args, result.stderr)
        assert snapshot(project) == before, args
    assert "no executions recorded yet" in cli(project, "history").stdout
    assert "no runs recorded yet" in cli(project, "monitor").stdout
    assert "would remove 0 execution(s)" in cli(project, "cleanup", "--dry-run").stdout
    assert cli(project, "status", "abc").stderr == "error: no execution with id 'abc'\n"
