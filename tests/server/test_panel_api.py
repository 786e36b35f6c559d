"""What the lab panel needs of the API: a run form's inputs, runs with parameters, the list
of executions kept live for runs started elsewhere."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

from tornado.httpclient import HTTPClientError

from jupyter_workflows.server.changes import ChangesHandler
from tests.server.conftest import API, Fetch

FORM = "workflows/definitions/form.json"
FORM_WORKFLOW = {
    "name": "form",
    "defaults": {"environment": {"REGION": "eu"}},
    "tasks": [
        {"id": "say", "type": "shell",
         "command": "echo ${params.n} ${env.REGION} ${env.TARGET} ${params.n}"},
        {"id": "more", "type": "shell", "command": "echo ${params.label}", "depends_on": ["say"]},
    ],
}  # fmt: skip


def payload(response: Any) -> Any:
    return json.loads(response.body)


def write_form(root: Path) -> None:
    (root / FORM).write_text(json.dumps(FORM_WORKFLOW))


async def wait_for_end(api: Fetch, execution_id: str, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = await api("GET", "executions", execution_id)
        if response.code == 200 and payload(response)["status"] not in ("pending", "running"):
            return dict(payload(response))
        await asyncio.sleep(0.2)
    raise AssertionError(f"execution {execution_id} did not end in {timeout}s")


async def test_each_workflow_lists_the_inputs_a_run_form_asks_for(
    api: Fetch, jp_root_dir: Path
) -> None:
    write_form(jp_root_dir)
    listed = {w["path"]: w for w in payload(await api("GET", "workflows"))["workflows"]}
    expected = {"env": {"REGION": "eu", "TARGET": ""}, "params": ["n", "label"]}
    assert listed[FORM]["inputs"] == expected
    assert listed["workflows/definitions/broken.json"]["inputs"] is None  # invalid: no form


async def test_a_run_takes_env_values_and_typed_parameters(api: Fetch, jp_root_dir: Path) -> None:
    write_form(jp_root_dir)
    body = {"path": FORM, "env": {"TARGET": "prod"}, "params": {"n": 5, "label": "x y"}}
    response = await api("POST", "runs", body=body)
    assert response.code == 202, response.body
    detail = await wait_for_end(api, payload(response)["execution_id"])
    tasks = {t["id"]: t for t in detail["tasks"]}
    assert tasks["say"]["log_tail"] == ["5 eu prod 5"] and tasks["more"]["result"] == "x y"


async def test_bad_parameters_are_refused_with_what_was_expected(
    api: Fetch, jp_root_dir: Path
) -> None:
    write_form(jp_root_dir)
    for params, expected in [([1], "must be an object"), ({"2x": 1}, "parameter name '2x'")]:
        response = await api("POST", "runs", body={"path": FORM, "params": params})
        assert response.code == 400 and expected in payload(response)["message"]


class _Seen(Exception):
    pass


async def test_the_events_stream_announces_a_run_started_by_the_cli(
    jp_fetch: Any, jp_root_dir: Path, monkeypatch
) -> None:
    monkeypatch.setattr(ChangesHandler, "poll_interval", 0.1)
    received: list[bytes] = []

    def on_chunk(chunk: bytes) -> None:
        received.append(chunk)
        if b"event: executions" in b"".join(received):
            raise _Seen  # ends the request: the stream never ends by itself

    listening = asyncio.ensure_future(
        jp_fetch(*API, "events", streaming_callback=on_chunk, request_timeout=60)
    )
    await asyncio.sleep(0.5)
    assert not listening.done()  # nothing changed yet: nothing sent but a comment
    assert b"event:" not in b"".join(received)
    started = time.monotonic()
    cli = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "jupyter_workflows", "run", "workflows/definitions/hello.json",
        cwd=jp_root_dir, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        # Raising in the callback closes the connection: the fetch then fails (HTTP 599).
        await asyncio.wait_for(listening, timeout=30)
    except (_Seen, HTTPClientError):
        pass
    finally:
        assert await cli.wait() == 0
    assert b"event: executions" in b"".join(received), received
    assert time.monotonic() - started < 30
