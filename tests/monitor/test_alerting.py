"""AlertManager: real runs through WorkflowOrchestrator, fake channels that record or fail."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from jupyter_workflows.definition.model import Notifications
from jupyter_workflows.engine import WorkflowOrchestrator
from jupyter_workflows.execution.events import RunEnded
from jupyter_workflows.monitor.alerting import AlertManager, recent_alerts
from jupyter_workflows.monitor.rules import AlertConfig, DeliveryConfig
from jupyter_workflows.store import ExecutionStore, default_store_path
from tests.conftest import make_workflow

SECRET = "pw-81c2-do-not-leak"


class Recording:
    """A channel that keeps what it was sent (optionally slowly)."""

    def __init__(self, name: str = "recording", pause: float = 0.0):
        self.name = name
        self.pause = pause
        self.sent: list[Any] = []
        self._lock = threading.Lock()

    def send(self, alert: Any) -> None:
        time.sleep(self.pause)
        with self._lock:
            self.sent.append(alert)


class Down:
    """A channel whose server is down, with the password in its error (as a careless URL)."""

    name = "down"

    def __init__(self) -> None:
        self.calls = 0

    def send(self, alert: Any) -> None:
        from jupyter_workflows.monitor.alert import ChannelError

        self.calls += 1
        raise ChannelError(f"connection refused: smtp://user:{SECRET}@127.0.0.1:1")


@pytest.fixture
def store(project: Path) -> ExecutionStore:
    return ExecutionStore(default_store_path(project))


def manager(store: ExecutionStore, channels: list[Any], **options: Any) -> AlertManager:
    config = options.pop("config", AlertConfig())
    return AlertManager(store, config=config, channels=channels, **options)


FAILING = make_workflow(
    {"id": "extract", "type": "shell", "command": "echo reading; echo 'no such table' >&2; exit 2"},
    name="etl",
)


def run(project: Path, workflow: Any, sinks: list[Any], **options: Any):
    orchestrator = WorkflowOrchestrator(project, sinks=sinks, kill_grace=2.0)
    return orchestrator.execute(workflow, raise_on_failure=False, **options)


def test_failed_run_sends_one_alert_and_records_it(project, store):
    channel = Recording()
    alerts = manager(store, [channel])
    execution = run(project, FAILING, [alerts])
    alerts.close()

    assert str(execution.status) == "failed"
    (alert,) = channel.sent
    assert alert.rule == "workflow_failed"
    assert alert.failing_task == "extract"
    assert alert.log_tail == ["reading", "no such table"]
    (record,) = recent_alerts(store.path)
    assert record["key"] == f"workflow_failed:etl:{execution.id}"
    assert record["ok"] is True
    assert record["channels"] == [
        {"channel": "recording", "ok": True, "attempts": 1, "error": None}
    ]


def test_channel_down_leaves_the_run_alone_then_is_retried_and_dropped(project, store, monkeypatch):
    monkeypatch.setenv("EMAIL_SMTP_PASSWORD", SECRET)
    down = Down()
    workflow = make_workflow({"id": "a", "type": "shell", "command": "echo done"}, name="ok")
    delivery = DeliveryConfig(attempts=3, backoff=0.0)
    alerts = manager(store, [down], config=AlertConfig(delivery=delivery))
    alerts.add_workflow(
        workflow.model_copy(update={"notifications": Notifications(on_completion=True)})
    )
    execution = run(project, workflow, [alerts])
    alerts.close()

    assert str(execution.status) == "succeeded"
    assert store.get_execution(execution.id).status == execution.status
    assert down.calls == 1  # the run's process tries once, then leaves it to the outbox
    (record,) = recent_alerts(store.path)
    assert (record["rule"], record["status"], record["ok"]) == (
        "workflow_succeeded",
        "pending",
        None,
    )
    (result,) = record["channels"]
    assert result["ok"] is None and result["attempts"] == 1
    assert "connection refused" in result["error"] and SECRET not in result["error"]

    # Another process on the store, with the same channel, delivering what is due.
    later = manager(store, [down], config=AlertConfig(delivery=delivery))
    later.deliver_pending()
    later.deliver_pending()
    assert down.calls == 3
    (record,) = recent_alerts(store.path)
    assert (record["status"], record["ok"]) == ("failed", False)  # dropped after 3 attempts
    assert record["channels"][0]["attempts"] == 3
    later.deliver_pending()
    assert down.calls == 3  # dropped: never tried again
    assert not list((store.path / "alerts" / "outbox").glob("*.json"))
    assert SECRET not in (store.path / "alerts.jsonl").read_text()


def test_same_alert_is_not_sent_again_after_a_restart(project, store):
    execution = run(project, FAILING, [])
    first = Recording()
    sent = manager(store, [first]).dispatch(manager(store, []).evaluate(execution.id))
    assert len(sent) == 1 and len(first.sent) == 1

    restarted = Recording()
    again = manager(store, [restarted])  # a new process reads alerts.jsonl
    assert again.dispatch(again.evaluate(execution.id)) == []
    assert restarted.sent == []
    assert len(recent_alerts(store.path)) == 1


def test_two_racing_managers_send_once(project, store):
    execution = run(project, FAILING, [])
    alerts = manager(store, []).evaluate(execution.id)
    channel = Recording(pause=0.2)  # slow enough that both managers are inside dispatch
    managers = [manager(store, [channel]) for _ in range(2)]  # both read an empty file
    barrier = threading.Barrier(2)

    def send(m: AlertManager) -> None:
        barrier.wait()
        m.dispatch(alerts)

    threads = [threading.Thread(target=send, args=(m,)) for m in managers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(channel.sent) == 1
    assert len(recent_alerts(store.path)) == 1


def test_sink_never_blocks_the_run(project, store):
    channel = Recording(pause=0.5)
    alerts = manager(store, [channel], background=True)
    started = time.monotonic()
    execution = run(project, FAILING, [alerts])
    run_took = time.monotonic() - started
    assert run_took < 0.5  # the run did not wait for the slow channel

    begin = time.monotonic()
    alerts(RunEnded(execution_id=execution.id, status="failed"))  # a second time: deduped
    assert time.monotonic() - begin < 0.05
    assert channel.sent == []  # still being delivered

    alerts.close()
    assert len(channel.sent) == 1


def test_evaluation_errors_are_recorded_not_raised(project, store):
    alerts = manager(store, [Recording()], background=False)
    alerts(RunEnded(execution_id="no-such-execution", status="failed"))
    (record,) = recent_alerts(store.path)
    assert record["rule"] == "internal" and record["ok"] is False
    assert "no-such-execution" in record["error"] or record["execution_id"] == "no-such-execution"


def test_disabled_config_sends_nothing(project, store):
    channel = Recording()
    alerts = AlertManager(
        store, config=AlertConfig(enabled=False), channels=[channel], background=False
    )
    run(project, FAILING, [alerts])
    assert channel.sent == []
    assert recent_alerts(store.path) == []


def test_an_unconfigured_channel_does_not_silence_the_others(project, run_workflow, capsys):
    from jupyter_workflows.monitor.alerting import AlertManager
    from jupyter_workflows.monitor.rules import AlertConfig, RuleConfig
    from jupyter_workflows.store import ExecutionStore, default_store_path

    execution = run_workflow(make_workflow({"id": "bad", "type": "shell", "command": "exit 3"}))
    store = ExecutionStore(default_store_path(project))
    config = AlertConfig(enabled=True, channels=["slack", "console"], rules=RuleConfig())
    manager = AlertManager(store, config=config, background=False, env={})
    [record] = manager.dispatch(manager.evaluate(execution.id), channels=manager._channels(None))
    outcome = {c["channel"]: c for c in record["channels"]}
    assert outcome["console"]["ok"] is True
    # Not configured here: kept for a process that has SLACK_WEBHOOK_URL, tried with backoff.
    assert record["status"] == "pending" and outcome["slack"]["ok"] is None
    assert "SLACK_WEBHOOK_URL" in outcome["slack"]["error"]
    assert "workflow 'test' failed" in capsys.readouterr().err
