"""The original Node orchestrator's command-line spellings, through the real `workflow`."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import cli

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "original"


def _copy(project: Path, name: str) -> Path:
    shutil.copy(FIXTURES / name, project / name)
    return project / name


def test_status_takes_the_execution_id_as_an_option(project: Path) -> None:
    _copy(project, "schedule-trigger.yaml")
    ran = cli(project, "run", "schedule-trigger.yaml", "--json", "--no-alerts")
    execution_id = json.loads(ran.stdout)["id"]
    by_option = cli(project, "status", "--execution-id", execution_id[:8], "--json")
    by_argument = cli(project, "status", execution_id[:8], "--json")
    assert by_option.returncode == 0, by_option.stderr
    assert json.loads(by_option.stdout)["id"] == json.loads(by_argument.stdout)["id"]
    assert json.loads(by_option.stdout)["status"] == "succeeded"
    neither = cli(project, "status")
    assert neither.returncode == 2 and "--execution-id" in neither.stderr
    assert "--execution-id ID" in cli(project, "status", "--help").stdout


def test_schedule_takes_the_cron_option_before_the_file(project: Path) -> None:
    _copy(project, "schedule-trigger.yaml")
    # --seconds (for tests): a leading seconds field, so a slot comes within a second
    command = [sys.executable, "-m", "jupyter_workflows", "schedule", "--cron", "* * * * * *",
               "--seconds", "schedule-trigger.yaml"]  # fmt: skip
    process = subprocess.Popen(command, cwd=project, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env=dict(os.environ))  # fmt: skip
    marker = project / "out" / "schedule.txt"
    try:
        deadline = time.monotonic() + 20
        while not marker.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=30)
    assert marker.read_text().strip() == "cleaned", out + err


def test_a_schedule_trigger_is_the_workflows_cron(project: Path) -> None:
    from jupyter_workflows.definition.loader import load_workflow
    from jupyter_workflows.triggers.scheduler import CronJob

    path = _copy(project, "schedule-trigger.yaml")
    workflow = load_workflow(path)
    assert workflow.trigger is not None and workflow.trigger.type == "cron"
    job = CronJob.from_workflow(path, workflow)
    assert job is not None and job.schedule == "0 2 * * *"


def test_create_and_generate_with_the_original_options(project: Path) -> None:
    created = cli(project, "create", "--name", "my-workflow", "--template", "ci-cd")
    assert created.returncode == 0, created.stderr
    written = project / created.stdout.strip()
    assert written == project / "workflows" / "definitions" / "my-workflow.json"
    generated = cli(project, "generate", "--type", "web-app", "--output", "web-app.json")
    assert generated.returncode == 0, generated.stderr
    assert generated.stdout.strip() == "web-app.json"
    validated = cli(project, "validate", str(written), "web-app.json")
    assert validated.returncode == 0, validated.stdout + validated.stderr


def test_workflow_config_json_at_the_root_configures_the_project(tmp_path: Path) -> None:
    project = tmp_path / "project"
    (project / "sub").mkdir(parents=True)
    (project / ".workflow-config.json").write_text(json.dumps({"storagePath": "./history"}))
    _copy(project, "schedule-trigger.yaml")
    # found from a folder below the root, as the root holding the configuration
    ran = cli(project / "sub", "run", "../schedule-trigger.yaml", "--no-alerts")
    assert ran.returncode == 0, ran.stderr
    assert (project / "out" / "schedule.txt").exists()
    assert (project / "history" / "journals").is_dir()
    assert not (project / "workflows" / ".executions").exists()
    history = cli(project / "sub", "history", "--json")
    assert [row["workflow"] for row in json.loads(history.stdout)] == ["nightly-maintenance"]


def test_validate_strict_names_each_original_spelling_and_its_native_one(project: Path) -> None:
    _copy(project, "loop-task.yaml")
    plain = cli(project, "validate", "loop-task.yaml")
    assert plain.returncode == 0 and "warning" not in plain.stdout + plain.stderr
    strict = cli(project, "validate", "--strict", "loop-task.yaml")
    assert strict.returncode == 0, strict.stderr
    lines = [line for line in strict.stderr.splitlines() if line.startswith("warning:")]
    assert lines == [
        "warning: loop-task.yaml:10:5, task 'deploy-multiple-envs', field 'task': "
        "original-format spelling: write it as then",
        "warning: loop-task.yaml:14:5, task 'deploy-multiple-envs', field 'parallel': "
        "original-format spelling: a loop's parallel; write max_parallel: N (the number of "
        "items)",
    ]
