"""Cancelling from the panel's REST API a run this server does not own: a real ``workflow run``
process, stopped through the store."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from tornado.httpclient import HTTPResponse

from jupyter_workflows.execution.states import State
from tests.runs import Runner, running

Fetch = Callable[..., Any]  # the ``api`` fixture (conftest.py)


def payload(response: HTTPResponse) -> Any:
    return json.loads(response.body)


@pytest.fixture
def runner(jp_root_dir: Path) -> Iterator[Runner]:
    yield from running(jp_root_dir)


async def test_the_panel_cancels_a_cli_run_within_two_seconds(api: Fetch, runner: Runner) -> None:
    tree = runner.task_processes()
    assert len(tree) == 4 and all(p.alive() for p in tree)
    detail = payload(await api("GET", "executions", runner.execution_id))
    assert detail["status"] == "running"

    asked = time.time()
    response = await api("POST", "executions", runner.execution_id, "cancel")
    assert response.code == 200, response.body
    assert payload(response) == {
        "execution_id": runner.execution_id,
        "cancelled": True,
        "status": "cancelled",
        "cancelled_by": "lab",
    }
    execution = runner.store.get_execution(runner.execution_id)
    assert execution.status is State.CANCELLED and execution.cancelled_by == "lab"
    assert execution.ended_at is not None and execution.ended_at - asked < 2.0
    assert not [p for p in tree if p.alive()]
    assert await asyncio.to_thread(runner.process.wait, 10) == 130

    detail = payload(await api("GET", "executions", runner.execution_id))
    assert (detail["status"], detail["cancelled_by"]) == ("cancelled", "lab")
    listed = payload(await api("GET", "executions"))["executions"]
    assert [(e["id"], e["cancelled_by"]) for e in listed] == [(runner.execution_id, "lab")]


async def test_the_panel_is_told_when_the_runner_had_died(api: Fetch, runner: Runner) -> None:
    runner.process.send_signal(signal.SIGKILL)
    await asyncio.to_thread(runner.process.wait)
    response = await api("POST", "executions", runner.execution_id[:8], "cancel")
    assert response.code == 409
    answer = payload(response)
    assert answer["execution_status"] == "crashed"
    assert "died" in answer["message"] and "recorded as crashed" in answer["message"]
    assert runner.store.get_execution(runner.execution_id).status is State.CRASHED
