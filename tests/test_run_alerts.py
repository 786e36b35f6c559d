"""Alerts attached to real runs: ``workflow run`` (and ``%workflow run``) evaluate the rules
when the run ends, send once, and never change the run's outcome, even when a channel is down."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path
from typing import Any

from pytest_httpserver import HTTPServer

from jupyter_workflows.monitor.alerting import recent_alerts
from tests.conftest import cli, write_workflow

FAILING = {"name": "nightly", "tasks": [
    {"id": "extract", "type": "shell",
     "command": "echo token is $API_TOKEN; echo boom >&2; exit 4"},
]}  # fmt: skip
PASSING = {"name": "fine", "tasks": [{"id": "a", "type": "shell", "command": "true"}]}
SECRET = "s3cr3t-token-value-42"
NO_CHANNELS = {"SLACK_WEBHOOK_URL": "", "ALERT_WEBHOOK_URL": "", "SENDGRID_API_KEY": ""}


def store_dir(project: Path) -> Path:
    return project / "workflows" / ".executions"


def config(project: Path, alerts: dict[str, Any]) -> None:
    (project / "workflows").mkdir(exist_ok=True)
    (project / "workflows" / "config.json").write_text(json.dumps({"alerts": alerts}))


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # nothing listens once the socket closes


def test_a_failed_run_alerts_on_the_console_after_its_summary(project: Path) -> None:
    write_workflow(project, FAILING)
    result = cli(project, "run", "wf.json", env={**NO_CHANNELS, "API_TOKEN": SECRET})
    assert result.returncode == 1
    assert "workflow 'nightly' failed" in result.stdout
    alert = result.stderr[result.stderr.index("ALERT [ERROR]") :]
    assert "Rule:         workflow_failed" in alert
    assert "Failing task: extract" in alert
    assert "exited with code 4" in alert and "boom" in alert  # the cause and last lines
    assert SECRET not in result.stderr and "token is ***" in alert
    (record,) = recent_alerts(store_dir(project))
    assert (record["rule"], record["workflow"]) == ("workflow_failed", "nightly")
    assert record["ok"] is True
    assert SECRET not in (store_dir(project) / "alerts.jsonl").read_text()


def test_a_passing_run_sends_nothing_and_no_alerts_opts_out(project: Path) -> None:
    write_workflow(project, PASSING)
    assert cli(project, "run", "wf.json").returncode == 0
    write_workflow(project, FAILING, "bad.json")
    result = cli(project, "run", "bad.json", "--no-alerts")
    assert result.returncode == 1 and "ALERT" not in result.stderr
    assert recent_alerts(store_dir(project)) == []


def test_a_channel_that_is_down_changes_nothing_but_is_recorded_and_shown(project: Path) -> None:
    config(project, {"channels": ["webhook"]})
    write_workflow(project, PASSING, "ok.json")
    write_workflow(project, {**FAILING, "notifications": {"channels": ["webhook", "console"],
                                                          "on_completion": True}})  # fmt: skip
    url = f"http://127.0.0.1:{closed_port()}/hooks/alerts"
    env = {**NO_CHANNELS, "ALERT_WEBHOOK_URL": url}
    assert cli(project, "run", "ok.json", env=env).returncode == 0  # default: no alert on success
    result = cli(project, "run", "wf.json", env=env)
    assert result.returncode == 1  # the run's own outcome, untouched by the failed delivery
    assert "ALERT [ERROR]" in result.stderr  # the console channel still delivered
    (record,) = recent_alerts(store_dir(project))
    outcome = {c["channel"]: c for c in record["channels"]}
    # Tried once by the run's process; left in the outbox for the next one, with backoff.
    assert record["status"] == "pending" and outcome["console"]["ok"] is True
    assert outcome["webhook"]["ok"] is None and outcome["webhook"]["attempts"] == 1
    assert "Connection refused" in outcome["webhook"]["error"]

    report = json.loads(cli(project, "monitor", "--json").stdout)
    assert report["alerts"][0]["status"] == "pending"
    table = cli(project, "monitor", env={"COLUMNS": "200"}).stdout
    assert "recent alerts" in table and "workflow_failed" in table
    assert "pending webhook (webhook: cannot reach" in table
    listed = cli(project, "alerts", env={"COLUMNS": "200"}).stdout
    assert listed.startswith("pending ") and "webhook: pending, next try" in listed
    assert "console: sent (attempt 1)" in listed


def test_the_same_run_is_never_alerted_twice(project: Path) -> None:
    write_workflow(project, FAILING)
    cli(project, "run", "wf.json", env=NO_CHANNELS)
    (record,) = recent_alerts(store_dir(project))
    from jupyter_workflows.monitor.alerting import AlertManager
    from jupyter_workflows.monitor.rules import AlertConfig
    from jupyter_workflows.store import ExecutionStore

    again = AlertManager(ExecutionStore(store_dir(project)), config=AlertConfig())
    alerts = again.evaluate(record["execution_id"])
    assert [a.rule for a in alerts] == ["workflow_failed"]
    assert again.dispatch(alerts) == []  # a restarted process finds it already sent
    assert len(recent_alerts(store_dir(project))) == 1


def test_an_unreadable_alerts_config_warns_and_the_run_goes_on(project: Path) -> None:
    config(project, {"channels": "slack"})
    write_workflow(project, PASSING)
    result = cli(project, "run", "wf.json")
    assert result.returncode == 0
    assert "warning: alerts are off for this run" in result.stderr
    assert "'alerts.channels' must be a list of channel names" in result.stderr


def test_disabled_alerts_send_nothing(project: Path) -> None:
    config(project, {"enabled": False})
    write_workflow(project, FAILING)
    result = cli(project, "run", "wf.json")
    assert result.returncode == 1 and "ALERT" not in result.stderr
    assert recent_alerts(store_dir(project)) == []


def test_secrets_given_with_env_or_in_the_workflow_are_masked_too(project: Path) -> None:
    leaky = {
        "name": "leaky",
        "defaults": {"environment": {"DB_PASSWORD": "hunter2-from-the-file"}},
        "tasks": [{"id": "t", "type": "shell",
                   "command": "echo $API_TOKEN $DB_PASSWORD; exit 1"}],
    }  # fmt: skip
    write_workflow(project, leaky)
    result = cli(project, "run", "wf.json", "--env", f"API_TOKEN={SECRET}", env=NO_CHANNELS)
    assert result.returncode == 1
    alert = result.stderr[result.stderr.index("ALERT [ERROR]") :]
    assert "*** ***" in alert
    everything = result.stderr + (store_dir(project) / "alerts.jsonl").read_text()
    assert SECRET not in everything and "hunter2-from-the-file" not in everything


def test_a_black_holed_receiver_costs_the_run_under_a_second_and_is_sent_later(
    project: Path,
) -> None:
    config(project, {"channels": ["webhook"], "retry_backoff": 0})
    write_workflow(project, FAILING)
    write_workflow(project, {**FAILING, "name": "nightly-2"}, "wf2.json")
    write_workflow(project, PASSING, "ok.json")
    hole = socket.socket()
    hole.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    hole.bind(("127.0.0.1", 0))
    hole.listen(8)  # the kernel accepts connections; nobody ever reads or answers them
    port = hole.getsockname()[1]
    env = {**NO_CHANNELS, "ALERT_WEBHOOK_URL": f"http://127.0.0.1:{port}/hooks/alerts"}

    def timed(*args: str) -> float:
        started = time.monotonic()
        cli(project, *args, env=env)
        return time.monotonic() - started

    # Whole processes, each the best of two: a busy machine adds noise, never removes it.
    without = min(timed("run", "ok.json", "--no-alerts") for _ in range(2))
    with_hole = min(timed("run", name) for name in ("wf.json", "wf2.json"))  # one alert each
    assert with_hole - without < 1.0, (with_hole, without)
    records = recent_alerts(store_dir(project))
    assert [r["workflow"] for r in records] == ["nightly-2", "nightly"]
    record = records[1]
    assert record["status"] == "pending" and record["channels"][0]["attempts"] >= 1
    assert "timed out" in record["channels"][0]["error"].lower()

    hole.close()  # the receiver comes back on the same address
    receiver = HTTPServer(host="127.0.0.1", port=port)
    receiver.expect_request("/hooks/alerts", method="POST").respond_with_data("ok")
    receiver.start()
    try:
        assert cli(project, "run", "ok.json", env=env).returncode == 0  # the next process
        keys = sorted(request.get_json()["key"] for request, _ in receiver.log)
        assert keys == sorted(r["key"] for r in records)  # each once
    finally:
        receiver.stop()
    records = recent_alerts(store_dir(project))
    assert [r["status"] for r in records] == ["sent", "sent"]
    assert cli(project, "alerts").stdout.count("webhook: sent (attempt") == 2


def test_ten_failures_fire_once_and_the_recovery_resolves_once(project: Path, httpserver) -> None:
    config(project, {"channels": ["webhook"], "success_window": 5,
                     "success_rate_threshold": 0.6})  # fmt: skip
    write_workflow(project, {"name": "flaky", "tasks": [
        {"id": "a", "type": "shell", "command": "exit ${env.CODE}"}]})  # fmt: skip
    httpserver.expect_request("/hook", method="POST").respond_with_data("ok")
    env = {**NO_CHANNELS, "ALERT_WEBHOOK_URL": httpserver.url_for("/hook")}
    for code in "1" * 10 + "0" * 4:
        cli(project, "run", "wf.json", "--env", f"CODE={code}", env=env)
    sent = [(r.get_json()["rule"], r.get_json()["state"]) for r, _ in httpserver.log]
    assert sent == [
        ("workflow_failed", "firing"),  # the first failure
        ("success_rate", "firing"),  # the fifth: 0 of the last 5 succeeded
        ("workflow_failed", "resolved"),  # the first success
        ("success_rate", "resolved"),  # the third success: 3 of 5, back at the threshold
    ]
    resolved = httpserver.log[3][0].get_json()
    assert resolved["title"] == "workflow 'flaky' success rate back to 60%"
    assert resolved["figures"]["firing_runs"] == 8  # runs 5 to 10 and two successes
    listed = json.loads(cli(project, "alerts", "--json").stdout)
    assert listed["firing"] == [] and len(listed["alerts"]) == 4
