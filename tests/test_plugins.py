"""A third-party package adds a task type and an alert channel through entry points.

The package is a real installed distribution as Python sees one: a module and a
``*.dist-info`` folder (METADATA, entry_points.txt) on the interpreter's path, which is what
pip writes. The real ``workflow`` command validates, runs and describes it.
"""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path

import pytest

from tests.conftest import cli, install_plugin

PLUGIN = '''
"""teams_plugin: a task type that writes a greeting file, an alert channel that files alerts."""
import json, os
from pathlib import Path
from typing import Literal

from pydantic import Field

from jupyter_workflows.definition.model import TaskBase
from jupyter_workflows.definition.templates import render
from jupyter_workflows.tasks.base import TaskResult, TaskType


class TeamsCall(TaskBase):
    type: Literal["teams_call"]
    message: str = Field(description="What to say.")
    room: str = "general"


class TeamsCallType(TaskType):
    name = "teams_call"
    model = TeamsCall

    async def run(self, task, ctx):
        message = render(task.message, ctx.scope)  # ${...} in fields: the type renders them
        ctx.resolve_path(f"{task.room}.txt").write_text(message)
        ctx.emit_line("stdout", f"said {message!r} in {task.room}")
        return TaskResult(result={"room": task.room, "said": message})


class TeamsChannel:
    name = "teams"

    def __init__(self, inbox):
        self.inbox = inbox

    def send(self, alert):
        with open(self.inbox, "a") as handle:
            handle.write(json.dumps({"rule": alert.rule, "workflow": alert.workflow}) + "\\n")


def teams_channel(env):
    return TeamsChannel(env["TEAMS_INBOX"])
'''

ENTRY_POINTS = """
[jupyter_workflows.tasks]
teams_call = teams_plugin:TeamsCallType

[jupyter_workflows.alert_channels]
teams = teams_plugin:teams_channel
"""


@pytest.fixture
def plugin_site(tmp_path: Path) -> Path:
    site = tmp_path / "site"
    install_plugin(site, "teams_plugin", textwrap.dedent(PLUGIN), ENTRY_POINTS)
    return site


def _env(site: Path, inbox: Path) -> dict[str, str]:
    path = os.pathsep.join(p for p in (str(site), os.environ.get("PYTHONPATH", "")) if p)
    return {"PYTHONPATH": path, "TEAMS_INBOX": str(inbox)}


def _workflow(project: Path) -> Path:
    path = project / "greet.yaml"
    path.write_text(
        textwrap.dedent(
            """\
            name: greet
            notifications: {channels: [teams], on_completion: true}
            tasks:
              - id: hello
                type: teams_call
                message: hello from ${env.WHO}
                room: standup
              - id: after
                type: shell
                command: echo "${tasks.hello.result.said}"
                depends_on: [hello]
            """
        )
    )
    return path


def test_an_installed_task_type_and_channel_validate_run_and_appear_in_the_schema(
    project: Path, plugin_site: Path
) -> None:
    inbox = project / "inbox.jsonl"
    env = _env(plugin_site, inbox)
    _workflow(project)

    checked = cli(project, "validate", "greet.yaml", env=env)
    assert checked.returncode == 0, checked.stderr
    assert "greet.yaml: valid" in checked.stdout

    ran = cli(project, "run", "greet.yaml", "--env", "WHO=ci", "--json", env=env)
    assert ran.returncode == 0, ran.stderr
    execution = json.loads(ran.stdout[ran.stdout.index("{") :])
    tasks = {task["id"]: task for task in execution["tasks"]}
    assert tasks["hello"]["status"] == "succeeded"
    assert tasks["hello"]["result"] == {"room": "standup", "said": "hello from ci"}
    assert tasks["after"]["result"] == "hello from ci"
    assert (project / "standup.txt").read_text() == "hello from ci"
    alerts = [json.loads(line) for line in inbox.read_text().splitlines()]
    assert alerts == [{"rule": "workflow_succeeded", "workflow": "greet"}]

    schema = json.loads(cli(project, "schema", env=env).stdout)
    assert schema["$defs"]["TeamsCall"]["properties"]["message"]["description"] == "What to say."
    tags = schema["$defs"]["ParallelTask"]["properties"]["tasks"]["items"]["discriminator"]
    assert tags["mapping"]["teams_call"] == "#/$defs/TeamsCall"


def test_without_the_package_the_type_and_channel_are_located_errors(project: Path) -> None:
    _workflow(project)
    checked = cli(project, "validate", "greet.yaml")
    assert checked.returncode == 1
    lines = checked.stderr.splitlines()
    assert any(
        "greet.yaml:2" in line and "notifications.channels[0]" in line
        and "unknown alert channel 'teams'" in line
        for line in lines
    ), lines  # fmt: skip
    assert any(
        "greet.yaml:5" in line and "task 'hello'" in line
        and "unknown task type 'teams_call'; expected one of shell" in line
        for line in lines
    ), lines  # fmt: skip
