"""The panel's Resume button: ``POST executions/{id}/resume`` against a real Jupyter server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.server.test_api import Fetch, payload, start, wait_for_status

GATED = "workflows/definitions/gated.json"


def gated(root: Path) -> None:
    """first -> second (fails until the file 'go' exists) -> third; each counts its runs."""
    tasks = [
        {"id": "first", "type": "shell", "command": "echo x >> runs_first; echo one"},
        {"id": "second", "type": "shell", "depends_on": ["first"],
         "command": "echo x >> runs_second; test -f go && echo two-${tasks.first.result}"},
        {"id": "third", "type": "shell", "depends_on": ["second"],
         "command": "echo x >> runs_third; echo ${tasks.second.result}"},
    ]  # fmt: skip
    (root / GATED).write_text(json.dumps({"name": "gated", "tasks": tasks}))


def counts(root: Path) -> tuple[int, ...]:
    return tuple(
        len((root / f"runs_{t}").read_text().splitlines()) if (root / f"runs_{t}").exists() else 0
        for t in ("first", "second", "third")
    )


async def test_resume_reruns_what_failed_and_reuses_the_rest(api: Fetch, jp_root_dir: Path) -> None:
    gated(jp_root_dir)
    failed_id = await start(api, GATED)
    await wait_for_status(api, failed_id, {"failed"})
    (jp_root_dir / "go").touch()

    response = await api("POST", "executions", failed_id[:8], "resume", body={})
    assert response.code == 202, response.body
    answer = payload(response)
    assert answer["resumed_from"] == failed_id and answer["workflow"] == "gated"
    detail = await wait_for_status(api, answer["execution_id"], {"succeeded", "failed"})
    assert detail["status"] == "succeeded" and detail["resumed_from"] == failed_id
    tasks = {t["id"]: t for t in detail["tasks"]}
    assert (tasks["first"]["reused"], tasks["first"]["reused_from"]) == ("resumed", failed_id)
    assert tasks["third"]["result"] == "two-one"
    assert counts(jp_root_dir) == (1, 2, 1)


async def test_resume_from_and_only(api: Fetch, jp_root_dir: Path) -> None:
    gated(jp_root_dir)
    (jp_root_dir / "go").touch()
    done_id = await start(api, GATED)
    await wait_for_status(api, done_id, {"succeeded"})
    response = await api("POST", "executions", done_id, "resume", body={"only": "second"})
    assert response.code == 202, response.body
    await wait_for_status(api, payload(response)["execution_id"], {"succeeded"})
    assert counts(jp_root_dir) == (1, 2, 1)
    response = await api("POST", "executions", done_id, "resume", body={"from": "second"})
    await wait_for_status(api, payload(response)["execution_id"], {"succeeded"})
    assert counts(jp_root_dir) == (1, 3, 2)


async def test_a_resume_that_cannot_be_done_is_refused(api: Fetch, jp_root_dir: Path) -> None:
    gated(jp_root_dir)
    failed_id = await start(api, GATED)
    await wait_for_status(api, failed_id, {"failed"})
    unknown = await api("POST", "executions", failed_id, "resume", body={"from": "nope"})
    assert unknown.code == 409
    assert "--from: the workflow has no task 'nope'" in payload(unknown)["message"]
    assert (await api("POST", "executions", "no-such-run", "resume")).code == 404
    bad = await api("POST", "executions", failed_id, "resume", body={"only": 3})
    assert bad.code == 400
    running_id = await start(api, "workflows/definitions/slow.json")
    await wait_for_status(api, running_id, {"running"})
    busy = await api("POST", "executions", running_id, "resume")
    assert busy.code == 409 and "still running" in payload(busy)["message"]
    await api("POST", "executions", running_id, "cancel")
    await wait_for_status(api, running_id, {"cancelled"})
    assert counts(jp_root_dir) == (1, 1, 0)


async def test_the_panel_sees_cached_tasks(api: Fetch, jp_root_dir: Path) -> None:
    path = "workflows/definitions/cached.json"
    task: dict[str, Any] = {
        "id": "slow",
        "type": "shell",
        "command": "echo computed",
        "cache": True,
    }
    (jp_root_dir / path).write_text(json.dumps({"name": "cached", "tasks": [task]}))
    first = await start(api, path)
    await wait_for_status(api, first, {"succeeded"})
    second = await start(api, path)
    detail = await wait_for_status(api, second, {"succeeded"})
    (slow,) = detail["tasks"]
    assert (slow["reused"], slow["reused_from"], slow["result"]) == ("cached", first, "computed")
