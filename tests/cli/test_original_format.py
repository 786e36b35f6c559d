"""Workflow files in the original Node orchestrator's format, one per documented feature, each
validated and run through the real ``workflow`` command in a project of its own.

The fixtures (``tests/fixtures/original/``) are written as the original's documentation writes
them; what each run must leave behind (marker files, a database, requests received, alerts
printed) is what the original gives the feature to mean.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import cli

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "original"


@dataclass
class Case:
    exit_code: int = 0
    env: dict[str, str] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()  # what `workflow validate` must warn about
    check: Callable[[Path, dict], None] | None = None  # (project, execution as JSON)


def _text(root: Path, name: str) -> str:
    return (root / "out" / name).read_text().strip()


def _statuses(execution: dict) -> dict[str, str]:
    return {task["id"]: task["status"] for task in execution["tasks"]}


def check_environment(root: Path, execution: dict) -> None:
    assert _text(root, "workflow-env.txt") == "production info production"
    assert _text(root, "task-env.txt") == "production debug"


def check_schedule(root: Path, execution: dict) -> None:
    assert _text(root, "schedule.txt") == "cleaned"


def check_trigger(root: Path, execution: dict) -> None:
    assert _text(root, "trigger.txt") == "deployed"


def check_callbacks(root: Path, execution: dict) -> None:
    statuses = _statuses(execution)
    assert statuses["build"] == "succeeded" and statuses["deploy"] == "failed"
    # build's on_success ran once; deploy's on_failure ran both callbacks, once each
    assert _text(root, "notify-success.txt") == "ok"
    assert _text(root, "rollback.txt") == "rolled-back"
    assert _text(root, "notify-failure.txt") == "failed"
    assert statuses["notify-success"] == "succeeded"
    assert statuses["rollback"] == statuses["notify-failure"] == "succeeded"


def check_callback_fails(root: Path, execution: dict) -> None:
    statuses = _statuses(execution)
    assert execution["status"] == "succeeded"
    assert statuses == {"deploy": "succeeded", "notify": "failed", "rollback": "skipped"}
    assert _text(root, "notify.txt") == "notifying"
    assert not (root / "out" / "rollback.txt").exists()


def check_exclusive(root: Path, execution: dict) -> None:
    assert set(_statuses(execution).values()) == {"succeeded"}
    assert _text(root, "build.txt") == "alone"
    tasks = {t["id"]: t for t in execution["tasks"]}
    build = tasks["build"]
    for other in ("lint", "docs"):
        # never alongside: one ended before the other started
        assert (
            tasks[other]["ended_at"] <= build["started_at"]
            or build["ended_at"] <= tasks[other]["started_at"]
        )


def check_loop(root: Path, execution: dict) -> None:
    for env in ("staging", "qa", "production"):
        assert _text(root, f"deploy-{env}.txt") == "deployed"
    loop = next(t for t in execution["tasks"] if t["id"] == "deploy-multiple-envs")
    # parallel: true: the three iterations of 0.5 s ran at once
    assert loop["duration"] < 1.4


def check_parallel(root: Path, execution: dict) -> None:
    for name, text in (("unit", "unit"), ("integration", "integration"), ("e2e", "e2e")):
        assert _text(root, f"{name}.txt") == text
    assert _statuses(execution)["unit-tests"] == "succeeded"


def check_first(root: Path, execution: dict) -> None:
    statuses = _statuses(execution)
    assert statuses["mirrors"] == "succeeded" and statuses["fast-mirror"] == "succeeded"
    assert statuses["slow-mirror"] == "cancelled"
    assert execution["duration"] < 10


def check_timeout(root: Path, execution: dict) -> None:
    statuses = _statuses(execution)
    assert statuses["suites"] == "timed_out"
    assert statuses["hangs"] in ("cancelled", "timed_out")
    assert execution["duration"] < 10


def check_database(root: Path, execution: dict) -> None:
    with sqlite3.connect(root / "app.db") as db:
        rows = db.execute("SELECT target FROM deployments ORDER BY id").fetchall()
    assert rows == [("staging",), ("production",)]


CASES = {
    "workflow-environment.json": Case(check=check_environment),
    "schedule-trigger.yaml": Case(check=check_schedule),
    "trigger-config-all.json": Case(
        check=check_trigger,
        warnings=(
            "8:7, field 'trigger.config.schedule': 'schedule' is not used by a 'webhook' trigger",
            "9:7, field 'trigger.config.files': 'files' is not used by a 'webhook' trigger",
        ),
    ),
    "callbacks.json": Case(exit_code=1, check=check_callbacks),
    "callback-fails.yaml": Case(check=check_callback_fails),
    "exclusive-task.yaml": Case(check=check_exclusive),
    "loop-task.yaml": Case(check=check_loop),
    "parallel-untyped.json": Case(check=check_parallel),
    "parallel-first.json": Case(check=check_first),
    "parallel-timeout.json": Case(exit_code=1, check=check_timeout),
    "database-migration.json": Case(env={"DATABASE_URL": "sqlite:///app.db"}, check=check_database),
}


@pytest.fixture
def original_project(project: Path) -> Path:
    for item in FIXTURES.iterdir():
        if item.is_dir():
            shutil.copytree(item, project / item.name)
        else:
            shutil.copy(item, project / item.name)
    return project


@pytest.mark.parametrize("name", sorted(CASES))
def test_original_fixture_validates_and_runs(name: str, original_project: Path) -> None:
    case = CASES[name]
    validated = cli(original_project, "validate", name)
    assert validated.returncode == 0, validated.stdout + validated.stderr
    shown = validated.stdout + validated.stderr
    warned = [line for line in shown.splitlines() if line.startswith("warning: ")]
    assert len(warned) == len(case.warnings), shown
    for line, expected in zip(warned, case.warnings, strict=True):
        assert f"warning: {name}:{expected}" in line
    env_pairs = [f"--env={k}={v}" for k, v in case.env.items()]
    ran = cli(original_project, "run", name, "--json", "--no-alerts", *env_pairs)
    assert ran.returncode == case.exit_code, ran.stdout + ran.stderr
    execution = json.loads(ran.stdout)
    if case.check is not None:
        case.check(original_project, execution)


def test_every_fixture_has_a_case() -> None:
    files = {p.name for p in FIXTURES.iterdir() if p.is_file()}
    others = {"docker-config.json", "http-data-auth.json", "notifications.json", "alerts.json"}
    assert files == set(CASES) | others


def test_docker_config_wrapping_validates_and_plans(original_project: Path) -> None:
    validated = cli(original_project, "validate", "docker-config.json")
    assert validated.returncode == 0, validated.stdout + validated.stderr
    plan = cli(original_project, "run", "docker-config.json", "--dry-run", "--env=BUILD_NUMBER=42")
    assert plan.returncode == 0, plan.stdout + plan.stderr
    assert 'build "Dockerfile" as "myapp:latest", "myapp:42"' in plan.stdout


def test_http_data_auth_and_millisecond_timeout(original_project: Path, httpserver) -> None:
    import base64

    basic = "Basic " + base64.b64encode(b"deployer:s3cret-pass").decode()
    httpserver.expect_ordered_request(
        "/releases",
        method="POST",
        json={"version": "1.2.3", "notes": "first cut"},
        headers={"Authorization": basic},
    ).respond_with_json({"id": 7}, status=201)
    httpserver.expect_ordered_request(
        "/health", method="GET", headers={"Authorization": "Bearer tok-123456"}
    ).respond_with_json({"status": "ok"})
    validated = cli(original_project, "validate", "http-data-auth.json")
    assert validated.returncode == 0, validated.stdout + validated.stderr
    assert "warning" not in validated.stdout
    env = {
        "API_URL": httpserver.url_for("").rstrip("/"),
        "NOTES": "first cut",
        "API_PASSWORD": "s3cret-pass",
        "API_TOKEN": "tok-123456",
    }
    ran = cli(original_project, "run", "http-data-auth.json", "--json", "--no-alerts", env=env)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    httpserver.check_assertions()
    assert "s3cret-pass" not in ran.stdout + ran.stderr
    assert "tok-123456" not in ran.stdout + ran.stderr


def test_http_timeout_number_is_milliseconds(project: Path, httpserver) -> None:
    def slow(request):  # answers after 2 s; the task allows 300 ms
        from werkzeug import Response

        time.sleep(2)
        return Response("late")

    httpserver.expect_request("/slow").respond_with_handler(slow)
    workflow = {
        "name": "slow",
        "tasks": [{"id": "ping", "type": "http", "url": httpserver.url_for("/slow"),
                   "timeout": 300}],
    }  # fmt: skip
    (project / "slow.json").write_text(json.dumps(workflow))
    started = time.monotonic()
    ran = cli(project, "run", "slow.json", "--json", "--no-alerts")
    assert ran.returncode == 1, ran.stdout + ran.stderr
    assert time.monotonic() - started < 10
    (task,) = json.loads(ran.stdout)["tasks"]
    assert task["status"] == "timed_out"


def test_notifications_send_on_completion(original_project: Path) -> None:
    ran = cli(original_project, "run", "notifications.json")
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "workflow 'notified-workflow' succeeded" in ran.stderr


def test_alerts_list_conditions_and_templates(original_project: Path) -> None:
    validated = cli(original_project, "validate", "alerts.json")
    assert validated.returncode == 0, validated.stdout + validated.stderr
    ran = cli(original_project, "run", "alerts.json")
    assert ran.returncode == 1, ran.stdout + ran.stderr
    assert "Workflow alerted-workflow failed: " in ran.stderr
    assert "Workflow success rate dropped to 0%" in ran.stderr
    assert "unusually long" not in ran.stderr
