"""Episodes: one message when a condition starts, reminders, one when it ends; shared by every
process on the store. Real runs, a recording channel, and real ``workflow run`` processes."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from jupyter_workflows.engine import WorkflowOrchestrator
from jupyter_workflows.monitor.alerting import AlertManager
from jupyter_workflows.monitor.episodes import open_episodes
from jupyter_workflows.monitor.rules import AlertConfig, RuleConfig
from jupyter_workflows.store import ExecutionStore, default_store_path
from tests.conftest import cli, make_workflow, write_workflow

FLAKY = {"name": "flaky", "tasks": [{"id": "a", "type": "shell", "command": "exit ${env.CODE}"}]}


class Recording:
    name = "recording"

    def __init__(self) -> None:
        self.sent: list[Any] = []

    def send(self, alert: Any) -> None:
        self.sent.append(alert)


def test_reminders_come_at_the_interval_while_the_condition_lasts(project: Path) -> None:
    channel = Recording()
    store = ExecutionStore(default_store_path(project))
    config = AlertConfig(remind_every=0.6, rules=RuleConfig(min_runs=100))  # no rate rule here
    manager = AlertManager(store, config=config, channels=[channel], background=False)
    orchestrator = WorkflowOrchestrator(project, sinks=[manager])
    workflow = make_workflow(*FLAKY["tasks"], name="flaky")

    def run(code: str) -> list[tuple[str, str, bool]]:
        before = len(channel.sent)
        orchestrator.execute(workflow, env={"CODE": code}, raise_on_failure=False)
        return [(a.rule, a.state, a.reminder) for a in channel.sent[before:]]

    assert run("1") == [("workflow_failed", "firing", False)]
    assert run("1") == []  # the same episode
    time.sleep(0.7)
    (reminder,) = run("1")
    assert reminder == ("workflow_failed", "firing", True)
    assert "(still, since " in channel.sent[-1].title
    assert channel.sent[-1].figures["firing_runs"] == 3
    assert run("1") == []  # the interval starts again from the reminder
    assert run("0") == [("workflow_failed", "resolved", False)]
    assert channel.sent[-1].text().startswith("[RESOLVED] workflow 'flaky' succeeded again")
    assert run("0") == []
    assert open_episodes(store.path) == []


def test_an_episode_is_shared_by_every_process_on_the_store(project: Path) -> None:
    write_workflow(project, FLAKY)
    first = cli(project, "run", "wf.json", "--env", "CODE=1")
    assert "ALERT [ERROR] workflow 'flaky' failed" in first.stderr
    second = cli(project, "run", "wf.json", "--env", "CODE=2")  # another process: same episode
    assert second.returncode == 1 and "ALERT" not in second.stderr
    (episode,) = open_episodes(default_store_path(project))
    assert (episode["workflow"], episode["rule"]) == ("flaky", "workflow_failed")
    assert episode["runs"] == 2
    listed = cli(project, "alerts").stdout
    assert "firing   workflow_failed of flaky since" in listed

    # A process that is not a `workflow run` (a notebook, the lab server) sees it too.
    store = ExecutionStore(default_store_path(project))
    channel = Recording()
    manager = AlertManager(store, config=AlertConfig(), channels=[channel], background=False)
    WorkflowOrchestrator(project, sinks=[manager]).execute(
        make_workflow(*FLAKY["tasks"], name="flaky"), env={"CODE": "0"}
    )
    assert [(a.rule, a.state) for a in channel.sent] == [("workflow_failed", "resolved")]
    data = json.loads(cli(project, "alerts", "--json").stdout)
    assert data["firing"] == []
    assert [(a["rule"], a["state"]) for a in data["alerts"]] == [
        ("workflow_failed", "resolved"), ("workflow_failed", "firing")
    ]  # fmt: skip
