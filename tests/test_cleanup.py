"""workflow cleanup: old executions go (rows, journals, artifacts); recent and running stay."""

from __future__ import annotations

import json
import subprocess
import sys
import time

from tests.conftest import cli, write_workflow


def _run(project, name: str) -> None:
    task = {"id": "a", "type": "shell", "command": "echo hi"}
    write_workflow(project, {"name": name, "tasks": [task]}, f"{name}.json")
    assert cli(project, "run", f"{name}.json").returncode == 0


def test_dry_run_reports_then_cleanup_removes_everything_of_old_runs(project):
    _run(project, "one")
    _run(project, "two")
    store = project / "workflows" / ".executions"
    [execution_id, _] = [r["id"] for r in json.loads(cli(project, "history", "--json").stdout)]
    artifacts = store / "artifacts" / execution_id
    artifacts.mkdir(parents=True)
    (artifacts / "executed.ipynb").write_text("{}")
    time.sleep(0.05)

    dry = json.loads(cli(project, "cleanup", "--days", "0", "--dry-run", "--json").stdout)
    assert dry["executions"] == 2 and dry["journals"] == 2 and dry["artifact_dirs"] == 1
    assert len(json.loads(cli(project, "history", "--json").stdout)) == 2  # nothing removed

    result = cli(project, "cleanup", "--days", "0")
    assert result.returncode == 0, result.stderr
    assert "removed 2 execution(s)" in result.stdout
    assert json.loads(cli(project, "history", "--json").stdout) == []
    assert not list((store / "journals").rglob("*.jsonl"))
    assert not artifacts.exists()
    rows = cli(project, "status", execution_id)
    assert rows.returncode == 1  # gone from the index too, and not re-ingested


def test_recent_runs_are_kept_by_the_configured_days(project):
    _run(project, "one")
    (project / "workflows" / "config.json").write_text(json.dumps({"cleanup": {"daysToKeep": 7}}))
    result = cli(project, "cleanup")
    assert "removed 0 execution(s)" in result.stdout and "(7 day(s) kept)" in result.stdout
    assert len(json.loads(cli(project, "history", "--json").stdout)) == 1


def test_a_running_execution_is_never_removed(project):
    started = project / "started"
    task = {"id": "long", "type": "shell", "command": f"touch {started}; sleep 30"}
    write_workflow(project, {"name": "long", "tasks": [task]})
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyter_workflows", "run", "wf.json"],
        cwd=project,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while not started.exists():
            assert time.monotonic() < deadline
            time.sleep(0.02)
        time.sleep(0.05)
        result = cli(project, "cleanup", "--days", "0")
        assert "removed 0 execution(s)" in result.stdout
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_bad_days_to_keep_is_one_clear_line(project):
    (project / "workflows").mkdir()
    (project / "workflows" / "config.json").write_text(json.dumps({"cleanup": {"daysToKeep": "x"}}))
    result = cli(project, "cleanup")
    assert result.returncode == 2 and "cleanup.daysToKeep" in result.stderr
    assert "Traceback" not in result.stderr


def test_alert_records_of_removed_runs_go_too(project):
    failing = {"name": "bad", "tasks": [{"id": "a", "type": "shell", "command": "exit 1"}]}
    write_workflow(project, failing, "bad.json")
    assert cli(project, "run", "bad.json").returncode == 1
    alerts = project / "workflows" / ".executions" / "alerts.jsonl"
    assert len(alerts.read_text().splitlines()) == 1
    time.sleep(0.05)

    dry = json.loads(cli(project, "cleanup", "--days", "0", "--dry-run", "--json").stdout)
    assert dry["alert_records"] == 1 and len(alerts.read_text().splitlines()) == 1
    result = cli(project, "cleanup", "--days", "0")
    assert "1 alert record(s)" in result.stdout
    assert alerts.read_text() == ""
    assert cli(project, "monitor", "--json").returncode == 0


def test_visible_notebook_copies_of_removed_runs_go_too(project):
    _run(project, "one")
    [execution_id] = [r["id"] for r in json.loads(cli(project, "history", "--json").stdout)]
    copy = project / "workflows" / "outputs" / "one" / execution_id[:8]
    copy.mkdir(parents=True)
    (copy / "t.ipynb").write_text("{}")
    other = project / "workflows" / "outputs" / "one" / "keepme00"
    other.mkdir()
    time.sleep(0.05)

    dry = json.loads(cli(project, "cleanup", "--days", "0", "--dry-run", "--json").stdout)
    assert dry["notebook_copies"] == 1 and copy.exists()
    result = cli(project, "cleanup", "--days", "0")
    assert "1 notebook copy folder(s)" in result.stdout
    assert not copy.exists() and other.exists()  # only the removed execution's copies
