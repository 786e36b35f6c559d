"""Alert rules against histories built by running real workflows."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from jupyter_workflows.definition.model import Notifications
from jupyter_workflows.errors import ConfigError
from jupyter_workflows.monitor.rules import (
    AlertConfig,
    RuleConfig,
    evaluate_rules,
    load_alert_config,
)
from jupyter_workflows.store import ExecutionStore, default_store_path
from tests.conftest import make_workflow

CONFIG = RuleConfig()


@pytest.fixture
def store(project: Path) -> ExecutionStore:
    return ExecutionStore(default_store_path(project))


def rules_of(alerts) -> list[str]:
    return [a.rule for a in alerts]


def test_failed_workflow_names_first_failed_task_with_its_last_lines(run_workflow, store):
    workflow = make_workflow(
        {"id": "prep", "type": "shell", "command": "echo ready"},
        {
            "id": "load",
            "type": "shell",
            "depends_on": ["prep"],
            "command": "for i in $(seq 1 30); do echo line $i; done; echo 'disk full' >&2; exit 3",
        },
        {"id": "report", "type": "shell", "depends_on": ["load"], "command": "true"},
        name="nightly",
    )
    execution = run_workflow(workflow)
    assert str(execution.status) == "failed"

    alerts = evaluate_rules(store, execution.id, CONFIG)

    assert rules_of(alerts) == ["workflow_failed"]
    alert = alerts[0]
    assert alert.title == "workflow 'nightly' failed"
    assert alert.workflow == "nightly" and alert.execution_id == execution.id
    assert alert.failing_task == "load"
    assert alert.key() == f"workflow_failed:nightly:{execution.id}"
    assert len(alert.log_tail) == 20
    assert alert.log_tail[-1] == "disk full"
    assert alert.log_tail[0] == "line 12"
    assert alert.figures["status"] == "failed"
    assert alert.figures["failed_tasks"] == ["load"]  # "report" was skipped, not failed
    assert alert.figures["duration_ms"] > 0
    assert "load" in alert.summary


def test_success_raises_nothing_by_default_and_info_on_completion(run_workflow, store):
    execution = run_workflow(make_workflow({"id": "a", "type": "shell", "command": "true"}))
    assert evaluate_rules(store, execution.id, CONFIG) == []

    notify = Notifications(on_completion=True, on_failure=False)
    alerts = evaluate_rules(store, execution.id, CONFIG, notifications=notify)
    assert rules_of(alerts) == ["workflow_succeeded"]
    assert alerts[0].severity == "info"
    assert alerts[0].title == "workflow 'test' succeeded"


def test_on_failure_false_silences_workflow_failed(run_workflow, store):
    execution = run_workflow(make_workflow({"id": "a", "type": "shell", "command": "exit 1"}))
    notify = Notifications(on_failure=False)
    assert evaluate_rules(store, execution.id, CONFIG, notifications=notify) == []


def test_success_rate_fires_only_below_threshold_with_enough_runs(run_workflow, store):
    config = RuleConfig(success_window=5, success_threshold=0.6, min_runs=5)
    workflow = make_workflow({"id": "a", "type": "shell", "command": "exit ${env.CODE}"})
    ids = [run_workflow(workflow, env={"CODE": code}).id for code in "001101"]

    def rate_alerts(execution_id: str):
        return [a for a in evaluate_rules(store, execution_id, config) if a.rule == "success_rate"]

    assert rate_alerts(ids[3]) == []  # 2 of 4 succeeded, but fewer than min_runs
    assert rate_alerts(ids[4]) == []  # 3 of 5 = 0.6: at the threshold, not below
    (alert,) = rate_alerts(ids[5])  # the last 5: 2 of 5 succeeded
    assert alert.figures == {
        "window": 5,
        "succeeded": 2,
        "failed": 3,
        "success_rate": 0.4,
        "threshold": 0.6,
    }
    assert alert.execution_id == ids[5]


def test_slow_run_against_median_of_previous_successful_runs(run_workflow, store):
    workflow = make_workflow({"id": "a", "type": "shell", "command": "sleep ${env.S}"})

    def run(seconds: str):
        execution = run_workflow(workflow, env={"S": seconds})
        return [a for a in evaluate_rules(store, execution.id, CONFIG) if a.rule == "slow_run"]

    assert run("0.1") == [] and run("0.1") == []
    assert run("0.6") == []  # only 2 successful runs before it: no baseline yet
    assert run("0.1") == []  # normal again
    (alert,) = run("0.6")
    figures = alert.figures
    assert figures["baseline_kind"] == "median"
    assert figures["factor"] == 2.0
    assert 100 <= figures["baseline_ms"] < 400  # a median of the 0.1 s runs, not the 0.6 one
    assert figures["duration_ms"] >= 600
    assert figures["duration_ms"] > 2 * figures["baseline_ms"]
    # By how much, against the p50 and p95 of the 4 successful runs before it (one slow).
    assert figures["p50_ms"] == figures["baseline_ms"] and figures["baseline_runs"] == 4
    assert figures["p50_ms"] < 400 < figures["p95_ms"] < figures["duration_ms"]
    assert figures["over_p95_ms"] == pytest.approx(figures["duration_ms"] - figures["p95_ms"])
    assert "x its median of 0." in alert.summary and "(p50; p95 0." in alert.summary
    assert "over the p50" in alert.summary and "over the p95" in alert.summary


def test_slow_run_against_expected_duration(run_workflow, store):
    workflow = make_workflow({"id": "a", "type": "shell", "command": "sleep ${env.S}"})
    fast = run_workflow(workflow, env={"S": "0"})
    slow = run_workflow(workflow, env={"S": "0.5"})

    assert evaluate_rules(store, fast.id, CONFIG, expected_duration=0.2) == []
    (alert,) = evaluate_rules(store, slow.id, CONFIG, expected_duration=0.2)
    assert alert.rule == "slow_run"
    assert alert.figures["baseline_kind"] == "expected"
    assert alert.figures["baseline_ms"] == 200
    assert alert.figures["duration_ms"] >= 500


def test_secret_env_values_are_redacted_from_alert_text(run_workflow, store, monkeypatch):
    secret = "tok-3f9a-very-secret"
    monkeypatch.setenv("API_TOKEN", secret)
    workflow = make_workflow(
        {"id": "call", "type": "shell", "command": 'echo "auth with $API_TOKEN"; exit 1'}
    )
    execution = run_workflow(workflow)

    (alert,) = evaluate_rules(store, execution.id, CONFIG)
    assert alert.log_tail == ["auth with ***"]
    assert secret not in json.dumps(alert.to_dict(), default=str)


def test_load_alert_config(project: Path):
    assert load_alert_config(project) == AlertConfig()
    config_file = project / "workflows" / "config.json"
    config_file.parent.mkdir()
    config_file.write_text(
        json.dumps(
            {
                "alerts": {
                    "enabled": False,
                    "channels": ["console", "slack"],
                    "success_rate_threshold": 0.75,
                    "success_window": 10,
                    "slow_factor": 3,
                }
            }
        )
    )
    config = load_alert_config(project)
    assert config.enabled is False
    assert config.channels == ["console", "slack"]
    assert config.rules == RuleConfig(success_window=10, success_threshold=0.75, slow_factor=3.0)

    config_file.write_text(json.dumps({"alerts": {"success_rate_threshold": 90}}))
    with pytest.raises(ConfigError, match="alerts.success_rate_threshold"):
        load_alert_config(project)


def test_load_the_episode_and_delivery_settings(project: Path):
    config_file = project / "workflows" / "config.json"
    config_file.parent.mkdir()
    config_file.write_text(json.dumps({"alerts": {
        "remind_every": "4h", "delivery_attempts": 3, "retry_backoff": "10s"}}))  # fmt: skip
    config = load_alert_config(project)
    assert config.remind_every == 4 * 3600
    assert (config.delivery.attempts, config.delivery.backoff) == (3, 10.0)
    assert [config.delivery.wait_after(n) for n in (1, 2, 3)] == [10.0, 20.0, 40.0]
    assert load_alert_config(project).delivery.deadline < 1  # a run never waits a second

    config_file.write_text(json.dumps({"alerts": {"remind_every": "soon"}}))
    with pytest.raises(ConfigError, match="alerts.remind_every"):
        load_alert_config(project)
    config_file.write_text(json.dumps({"alerts": {"delivery_attempts": 0}}))
    with pytest.raises(ConfigError, match="alerts.delivery_attempts"):
        load_alert_config(project)
