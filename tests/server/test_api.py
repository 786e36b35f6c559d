"""The REST API of the server extension, against a real Jupyter server running real workflows."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from tornado.httpclient import HTTPClientError, HTTPResponse

from jupyter_workflows.execution.records import Attempt, Execution, TaskRecord
from jupyter_workflows.execution.states import State
from jupyter_workflows.store import ExecutionStore, JournalWriter, default_store_path
from jupyter_workflows.store.synth import execution_events

API = ("jupyter-workflows", "api")
Fetch = Callable[..., Awaitable[HTTPResponse]]  # the ``api`` fixture (conftest.py)
HELLO = "workflows/definitions/hello.json"
SLOW = "workflows/definitions/slow.json"
TICKER = "workflows/definitions/ticker.json"
BROKEN = "workflows/definitions/broken.json"


def payload(response: HTTPResponse) -> Any:
    return json.loads(response.body)


def parse_sse(text: str) -> list[tuple[str, Any]]:
    """Server-sent events as (event, data) pairs; comment lines are skipped."""
    events = []
    for block in text.split("\n\n"):
        kind, data = None, None
        for line in block.splitlines():
            if line.startswith("event: "):
                kind = line[len("event: ") :]
            elif line.startswith("data: "):
                data = json.loads(line[len("data: ") :])
        if kind is not None:
            events.append((kind, data))
    return events


def write_history(root: Path, executions: list[Execution]) -> ExecutionStore:
    """Record ``executions`` in the project's store as their runners would have (journals
    replayed by ``store.synth``), then index them in one pass."""
    store = ExecutionStore(default_store_path(root))
    for execution in executions:
        with JournalWriter(store.journal_path(execution.id)) as write:
            for event in execution_events(execution):
                write(event)
    store.refresh()
    return store


def synthetic_execution(
    execution_id: str,
    *,
    workflow: str = "etl",
    started_at: float,
    status: State = State.SUCCEEDED,
    tasks: int = 3,
    trigger: str = "cron",
) -> Execution:
    """A finished run whose tasks each ran once and printed two lines."""
    execution = Execution(
        id=execution_id,
        workflow=workflow,
        status=status,
        trigger=trigger,
        started_at=started_at,
        ended_at=started_at + 2.0,
        error=None if status is State.SUCCEEDED else "task t0 failed",
    )
    for i in range(tasks):
        start = started_at + i * 0.01
        task_status = status if i == 0 else State.SUCCEEDED
        execution.tasks[f"t{i}"] = TaskRecord(
            id=f"t{i}",
            status=task_status,
            started_at=start,
            ended_at=start + 0.5,
            exit_code=0 if task_status is State.SUCCEEDED else 1,
            attempts=[Attempt(1, task_status, start, start + 0.5, 0)],
            log_tail=[f"{execution_id} t{i} line 1", f"{execution_id} t{i} line 2"],
        )
    return execution


async def wait_for_status(
    api: Fetch, execution_id: str, statuses: set[str], timeout: float = 15
) -> dict[str, Any]:
    """Poll the detail endpoint until the execution reaches one of ``statuses``."""
    deadline = time.monotonic() + timeout
    detail: dict[str, Any] = {}
    while time.monotonic() < deadline:
        response = await api("GET", "executions", execution_id)
        if response.code == 200:
            detail = payload(response)
            if detail["status"] in statuses:
                return detail
        await asyncio.sleep(0.1)
    raise AssertionError(f"{execution_id} never reached {statuses}: {detail.get('status')}")


def service_of(jp_serverapp: Any) -> Any:
    return jp_serverapp.web_app.settings["jupyter_workflows"].service


async def start(api: Fetch, path: str, **body: Any) -> str:
    response = await api("POST", "runs", body={"path": path, **body})
    assert response.code == 202, response.body
    return str(payload(response)["execution_id"])


async def stream(api: Fetch, execution_id: str, timeout: float = 20) -> list[tuple[str, Any]]:
    """The whole SSE stream of an execution, read until the server ends it."""
    chunks: list[bytes] = []
    response = await api(
        "GET",
        "executions",
        execution_id,
        "events",
        streaming_callback=chunks.append,
        request_timeout=timeout,
    )
    assert response.code == 200
    assert response.headers["Content-Type"].startswith("text/event-stream")
    return parse_sse(b"".join(chunks).decode())


# -- authentication ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "parts"),
    [
        ("GET", ("workflows",)),
        ("POST", ("runs",)),
        ("POST", ("validate",)),
        ("GET", ("executions",)),
        ("GET", ("executions", "some-id")),
        ("GET", ("executions", "some-id", "events")),
        ("POST", ("executions", "some-id", "cancel")),
        ("GET", ("executions", "some-id", "tasks", "t", "log")),
        ("POST", ("executions", "some-id", "tasks", "t", "notebook")),
        ("GET", ("health",)),
    ],
)
async def test_requests_without_a_token_are_refused(
    api: Fetch, jp_root_dir: Path, method: str, parts: tuple[str, ...]
) -> None:
    body = {"path": HELLO} if method == "POST" else None
    # A matching XSRF cookie and header, so that a POST is refused for want of a login, not
    # for want of an XSRF token (that refusal would hide a handler missing its auth check).
    headers = {"Authorization": "", "Cookie": "_xsrf=same", "X-XSRFToken": "same"}
    response = await api(method, *parts, body=body, headers=headers)
    assert response.code == 403
    assert b"xsrf" not in (response.body or b"").lower()
    assert not default_store_path(jp_root_dir).exists()  # nothing ran, nothing was recorded


# -- workflows and validation -----------------------------------------------------------------


async def test_lists_the_workflows_under_the_root_with_their_latest_run(
    api: Fetch, jp_root_dir: Path, tmp_path: Path
) -> None:
    (tmp_path / "outside.json").write_text(json.dumps({"name": "outside", "tasks": []}))
    os.symlink(tmp_path / "outside.json", jp_root_dir / "workflows" / "definitions" / "ln.json")
    listed = payload(await api("GET", "workflows"))["workflows"]
    assert [w["path"] for w in listed] == [
        "analysis/report.workflow.json",
        "workflows/definitions/broken.json",
        "workflows/definitions/cron.yaml",
        "workflows/definitions/flaky.json",
        "workflows/definitions/hello.json",
        "workflows/definitions/slow.json",
        "workflows/definitions/ticker.json",
    ]  # not notes.json, nor under .cache/ or node_modules/, nor ln.json leading out
    by_name = {w["name"]: w for w in listed}
    assert by_name["hello"]["description"] == "says hello twice"
    assert by_name["hello"]["trigger"] == "manual"
    assert by_name["report"]["trigger"] == "cron"
    assert by_name["nightly"]["trigger"] == "cron"  # YAML
    assert by_name["slow"]["trigger"] is None
    assert by_name["broken"]["valid"] is False and by_name["broken"]["problems"] >= 2
    assert by_name["hello"]["last_status"] is None

    execution_id = await start(api, HELLO)
    await wait_for_status(api, execution_id, {"succeeded"})
    hello = next(
        w for w in payload(await api("GET", "workflows"))["workflows"] if w["name"] == "hello"
    )
    assert hello["last_status"] == "succeeded"
    assert hello["last_execution_id"] == execution_id
    assert hello["last_started_at"] == pytest.approx(time.time(), abs=60)


async def test_validate_reports_located_problems(api: Fetch) -> None:
    good = payload(await api("POST", "validate", body={"path": HELLO}))
    assert good == {"path": HELLO, "ok": True, "problems": []}

    bad = payload(await api("POST", "validate", body={"path": BROKEN}))
    assert bad["ok"] is False
    messages = " | ".join(p["message"] for p in bad["problems"])
    assert "missing" in messages and "nope" in messages
    assert {p["file"] for p in bad["problems"]} == {BROKEN}  # relative, as the client named it
    assert all(p["line"] for p in bad["problems"])


# -- runs ---------------------------------------------------------------------------------------


async def test_runs_a_workflow_in_the_server_and_shows_its_detail(api: Fetch) -> None:
    response = await api("POST", "runs", body={"path": HELLO})
    assert response.code == 202
    started = payload(response)
    assert started["workflow"] == "hello"

    detail = await wait_for_status(api, started["execution_id"], {"succeeded", "failed"})
    assert detail["status"] == "succeeded"
    assert detail["trigger"] == "api"
    assert detail["file"] == HELLO
    assert detail["output_notebooks"] == []
    tasks = {t["id"]: t for t in detail["tasks"]}
    assert tasks["greet"]["status"] == "succeeded"
    assert tasks["greet"]["log_tail"] == ["hello", "to-err"]
    assert tasks["again"]["depends_on"] == ["greet"]
    assert [a["status"] for a in tasks["again"]["attempts"]] == ["succeeded"]
    # Run by the server, here: the record says so; "where" is for tasks that ran elsewhere.
    attempt = tasks["again"]["attempts"][0]
    assert (attempt["executor"], attempt["worker"], attempt["host"]) == (
        "local",
        None,
        socket.gethostname(),
    )
    assert tasks["again"]["where"] is None
    assert (detail["executor"], detail["cluster"], detail["dashboard"]) == ("local", None, None)

    log = payload(await api("GET", "executions", started["execution_id"], "tasks", "greet", "log"))
    assert log["task_id"] == "greet"
    assert [(line["stream"], line["text"]) for line in log["lines"]] == [
        ("stdout", "hello"),
        ("stderr", "to-err"),
    ]
    assert all(line["at"] == pytest.approx(time.time(), abs=60) for line in log["lines"])


async def test_env_reaches_the_tasks(api: Fetch) -> None:
    execution_id = await start(api, "analysis/report.workflow.json", env={"GREETING": "hi"})
    detail = await wait_for_status(api, execution_id, {"succeeded", "failed"})
    assert detail["tasks"][0]["log_tail"] == ["value=hi"]


async def test_a_failing_run_shows_its_retries_and_error(api: Fetch) -> None:
    execution_id = await start(api, "workflows/definitions/flaky.json")
    detail = await wait_for_status(api, execution_id, {"succeeded", "failed"})
    assert detail["status"] == "failed"
    task = detail["tasks"][0]
    assert [a["exit_code"] for a in task["attempts"]] == [3, 3]
    assert task["error"]
    log = payload(
        await api("GET", "executions", execution_id, "tasks", "boom", "log", params={"tail": "1"})
    )
    assert [line["text"] for line in log["lines"]] == ["trying"]
    assert log["lines"][0]["attempt"] == 2


async def test_cancel_stops_a_slow_run_and_records_it_cancelled(api: Fetch) -> None:
    execution_id = await start(api, SLOW)
    running = await wait_for_status(api, execution_id, {"running"})
    assert running["tasks"][0]["status"] in ("pending", "running")

    response = await api("POST", "executions", execution_id, "cancel")
    assert response.code == 200  # recorded cancelled before the answer
    assert payload(response) == {
        "execution_id": execution_id,
        "cancelled": True,
        "status": "cancelled",
        "cancelled_by": "lab",
    }
    detail = await wait_for_status(api, execution_id, {"cancelled"}, timeout=10)
    assert detail["tasks"][0]["status"] == "cancelled"
    assert detail["cancelled_by"] == "lab"
    assert detail["error"] == "cancelled on request from lab"

    again = await api("POST", "executions", execution_id, "cancel")
    assert again.code == 409
    assert payload(again) == {
        "message": f"execution '{execution_id}' is not running: it has ended: cancelled "
        "(cancelled on request from lab)",
        "execution_status": "cancelled",
    }
    assert (await api("POST", "executions", "no-such-run", "cancel")).code == 404


async def test_a_full_queue_refuses_and_a_waiting_run_can_be_cancelled(
    api: Fetch, jp_serverapp: Any
) -> None:
    service = service_of(jp_serverapp)
    service.concurrency, service.max_waiting = 1, 1  # the queue is made at the first run
    first = await start(api, SLOW)
    waiting = await start(api, HELLO)
    full = await api("POST", "runs", body={"path": HELLO})
    assert full.code == 503
    assert "too many runs" in payload(full)["message"]

    # The waiting run is not in the store yet; the server still knows it.
    pending = payload(await api("GET", "executions", waiting))
    assert (pending["status"], pending["workflow"]) == ("pending", "hello")
    assert (await api("POST", "executions", waiting, "cancel")).code == 200
    assert (await wait_for_status(api, waiting, {"cancelled"}))["error"].startswith("cancelled")
    assert (await api("POST", "executions", first, "cancel")).code == 200
    await wait_for_status(api, first, {"cancelled"})


async def test_shutting_down_records_running_runs_as_cancelled(
    api: Fetch, jp_serverapp: Any, jp_root_dir: Path
) -> None:
    execution_id = await start(api, SLOW)
    await wait_for_status(api, execution_id, {"running"})
    await jp_serverapp.web_app.settings["jupyter_workflows"].stop_extension()
    from jupyter_workflows.store import ExecutionStore

    store = ExecutionStore(default_store_path(jp_root_dir))
    assert store.get_execution(execution_id).status is State.CANCELLED


# -- live events --------------------------------------------------------------------------------


async def test_events_stream_a_running_execution_until_it_ends(api: Fetch) -> None:
    execution_id = await start(api, TICKER)
    events = await stream(api, execution_id)
    kinds = [kind for kind, _ in events]
    assert kinds[0] == "snapshot"
    assert events[0][1]["id"] == execution_id
    assert kinds[-1] == "run"
    assert events[-1][1]["status"] == "succeeded"
    assert set(kinds) == {"snapshot", "run", "tasks", "output"}
    snapshot_lines = [line for t in events[0][1]["tasks"] for line in t["log_tail"]]
    streamed = [data["line"] for kind, data in events if kind == "output"]
    lines = [f"tick{i}" for i in range(1, 6)] + ["finished"]
    assert snapshot_lines + streamed == lines  # each line once, in order


async def test_a_late_subscriber_gets_the_snapshot_then_the_rest(api: Fetch) -> None:
    execution_id = await start(api, TICKER)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # wait until the run is under way
        detail = payload(await api("GET", "executions", execution_id))
        if detail["status"] == "running" and detail["tasks"] and detail["tasks"][0]["log_tail"]:
            break
        await asyncio.sleep(0.05)
    events = await stream(api, execution_id)
    snapshot = events[0][1]
    assert snapshot["status"] == "running"
    tick = snapshot["tasks"][0]
    assert tick["status"] == "running" and tick["log_tail"][0] == "tick1"
    streamed = [data["line"] for kind, data in events if kind == "output"]
    assert tick["log_tail"] + streamed == [f"tick{i}" for i in range(1, 6)] + ["finished"]
    assert events[-1][0] == "run"

    # After the end: the snapshot alone, from the store.
    after = await stream(api, execution_id)
    assert [kind for kind, _ in after] == ["snapshot"]
    assert after[0][1]["status"] == "succeeded"


def follow(events: list[tuple[str, Any]]) -> dict[str, dict[str, Any]]:
    """What a client holds at the end of a stream: the snapshot's tasks, each replaced by the
    records that came after it (new ids appended), checking each is sent once per flush."""
    kind, snapshot = events[0]
    assert kind == "snapshot"
    held = {task["id"]: task for task in snapshot["tasks"]}
    for kind, data in events[1:]:
        if kind == "tasks":
            ids = [task["id"] for task in data]
            assert len(ids) == len(set(ids)), ids
            held.update(zip(ids, data, strict=True))
    return held


def record_broadcasters(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The RunBroadcasters the service makes from now on (to see the runs' own Executions)."""
    from jupyter_workflows.server import live, service

    made: list[Any] = []

    class Recorded(live.RunBroadcaster):
        def __init__(self, *args: Any, **kwargs: Any):
            super().__init__(*args, **kwargs)
            made.append(self)

    monkeypatch.setattr(service, "RunBroadcaster", Recorded)
    return made


async def test_the_stream_carries_the_records_execution_apply_folded(
    api: Fetch, jp_root_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Replacing the snapshot's tasks with the streamed records ends exactly where the run's
    own Execution ended: results, outputs, a composite child's parent, a stepped task's
    progress with its status, attempts and log tails."""
    (jp_root_dir / "data").mkdir()
    (jp_root_dir / "data" / "a.json").write_text('{"n": 2}')
    (jp_root_dir / "data" / "b.json").write_text('{"n": -1}')
    (jp_root_dir / "double.py").write_text(
        "import json, sys\n"
        "n = json.load(sys.stdin)['n']\n"
        "if n < 0: sys.exit('negative')\n"
        "print(json.dumps(n * 2))\n"
    )
    workflow = {
        "name": "records",
        "tasks": [
            {
                "id": "fan",
                "type": "parallel",
                "tasks": [
                    {"id": "left", "type": "shell",
                     "command": "echo left; echo side=left >> $WORKFLOW_OUTPUT"},
                    {"id": "right", "type": "shell", "command": "echo right"},
                ],
            },
            {
                "id": "files",
                "type": "data_processor",
                "input": {"path": "data/*.json"},
                "processor": {"type": "python", "script": "double.py"},
                "max_parallel": 1,
                "depends_on": ["fan"],
            },
        ],
    }  # fmt: skip
    (jp_root_dir / "records.workflow.json").write_text(json.dumps(workflow))
    made = record_broadcasters(monkeypatch)
    execution_id = await start(api, "records.workflow.json")
    events = await stream(api, execution_id)
    assert events[-1][0] == "run" and events[-1][1]["status"] == "failed"

    execution = made[0].execution
    held = follow(events)
    expected = execution.to_dict()["tasks"]
    assert [t["id"] for t in expected] == ["fan", "files", "left", "right"]
    added = ("log_tail", "where")  # what task_json adds to the record
    assert [{k: v for k, v in held[t["id"]].items() if k not in added} for t in expected] == (
        expected
    )
    for task_id, record in execution.tasks.items():
        assert held[task_id]["log_tail"] == record.log_tail
    left = held["left"]
    assert (left["parent"], left["result"], left["outputs"]) == ("fan", "left", {"side": "left"})
    assert held["files"]["progress"] == {
        "step": 2, "total": 2, "label": "data/b.json", "status": "failed"
    }  # fmt: skip


async def test_a_big_run_is_sent_in_batches(api: Fetch, jp_root_dir: Path) -> None:
    """500 tasks: a few messages of many records each, not one message per event."""
    tasks = 500
    workflow = {
        "name": "wide",
        "defaults": {"max_parallel": 50},
        "tasks": [{"id": f"t{i}", "type": "shell", "command": "true"} for i in range(tasks)],
    }
    (jp_root_dir / "wide.workflow.json").write_text(json.dumps(workflow))
    execution_id = await start(api, "wide.workflow.json")
    started = time.monotonic()
    events = await stream(api, execution_id, timeout=60)
    elapsed = time.monotonic() - started
    held = follow(events)
    assert len(held) == tasks and {t["status"] for t in held.values()} == {"succeeded"}
    messages = len(events) - 1
    # Each flush is at most three messages (output, tasks, run) and flushes are batch_interval
    # apart; a message per event would be over 2,000 (start, attempt start and end, end).
    assert messages <= 3 * (elapsed / 0.1 + 2), (messages, elapsed)
    print(f"{tasks} tasks in {elapsed:.1f} s: {messages} messages")


async def test_a_quiet_stream_keeps_alive_and_ends_when_the_run_is_cancelled(
    api: Fetch, jp_fetch: Any, jp_serverapp: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from jupyter_workflows.server.events import EventsHandler

    monkeypatch.setattr(EventsHandler, "keep_alive", 0.1)
    execution_id = await start(api, SLOW)
    live = service_of(jp_serverapp)._live[execution_id]

    # A client that gives up: its subscription goes with it.
    left: list[Any] = []
    unsubscribe = live.unsubscribe
    monkeypatch.setattr(live, "unsubscribe", lambda s: (left.append(s), unsubscribe(s)))
    with pytest.raises(HTTPClientError) as gone:
        await jp_fetch(*API, "executions", execution_id, "events", request_timeout=0.4)
    assert gone.value.code == 599  # the client's own timeout
    await asyncio.sleep(0.2)
    assert len(left) == 1 and left[0].closed
    assert not live._subscribers

    chunks: list[bytes] = []

    async def cancel_soon() -> None:
        await asyncio.sleep(0.5)
        assert (await api("POST", "executions", execution_id, "cancel")).code == 200

    canceller = asyncio.ensure_future(cancel_soon())
    response = await api(
        "GET", "executions", execution_id, "events", streaming_callback=chunks.append
    )
    await canceller
    assert response.code == 200
    text = b"".join(chunks).decode()
    assert text.count(": keep-alive") >= 2
    events = parse_sse(text)
    assert events[-1][0] == "run" and events[-1][1]["status"] == "cancelled"


async def test_a_run_of_another_process_is_followed_through_the_store(
    api: Fetch, jp_root_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from jupyter_workflows.server.events import EventsHandler

    monkeypatch.setattr(EventsHandler, "poll_interval", 0.1)
    workflow = {
        "name": "from-cli",
        "tasks": [
            {"id": "first", "type": "shell", "command": "echo started; sleep 1.5"},
            {"id": "last", "type": "shell", "command": "echo finished", "depends_on": ["first"]},
        ],
    }
    (jp_root_dir / "cli.workflow.json").write_text(json.dumps(workflow))
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "jupyter_workflows", "run", "cli.workflow.json",
        cwd=jp_root_dir, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        execution_id = None
        deadline = time.monotonic() + 15
        while execution_id is None and time.monotonic() < deadline:
            rows = payload(await api("GET", "executions", params={"status": "running"}))
            execution_id = rows["executions"][0]["id"] if rows["executions"] else None
            await asyncio.sleep(0.05)
        assert execution_id is not None, "the CLI run never showed up"
        events = await stream(api, execution_id)
    finally:
        await process.wait()
    kinds = [kind for kind, _ in events]
    assert kinds[0] == "snapshot" and events[0][1]["status"] == "running"
    assert set(kinds) == {"snapshot"}  # the store's view whenever it changed, to the end
    assert events[-1][1]["status"] == "succeeded"
    assert events[-1][1]["tasks"][-1]["log_tail"] == ["finished"]


async def test_events_of_an_unknown_execution_are_404(api: Fetch) -> None:
    response = await api("GET", "executions", "nope", "events")
    assert response.code == 404
    assert "nope" in payload(response)["message"]


# -- history ------------------------------------------------------------------------------------


@pytest.fixture
def history(jp_root_dir: Path) -> list[str]:
    """Seven recorded runs, newest first: etl and load, one failed, one two days old."""
    now = time.time()
    plan = [
        ("run-7", "etl", now - 60, State.SUCCEEDED),
        ("run-6", "load", now - 120, State.FAILED),
        ("run-5", "etl", now - 180, State.SUCCEEDED),
        ("run-4", "load", now - 240, State.SUCCEEDED),
        ("run-3", "etl", now - 300, State.SUCCEEDED),
        ("run-2", "etl", now - 360, State.FAILED),
        ("run-1", "etl", now - 2 * 86400, State.SUCCEEDED),
    ]
    write_history(
        jp_root_dir,
        [synthetic_execution(i, workflow=w, started_at=t, status=s) for i, w, t, s in plan],
    )
    return [p[0] for p in plan]


async def test_executions_page_and_filter(api: Fetch, history: list[str]) -> None:
    async def ids(**params: str) -> tuple[list[str], int]:
        answer = payload(await api("GET", "executions", params=params))
        return [row["id"] for row in answer["executions"]], answer["total"]

    assert await ids() == (history, 7)
    assert await ids(limit="3") == (history[:3], 7)
    assert await ids(limit="3", offset="3") == (history[3:6], 7)
    assert await ids(offset="50") == ([], 7)
    assert await ids(workflow="load") == (["run-6", "run-4"], 2)
    assert await ids(status="failed") == (["run-6", "run-2"], 2)
    assert await ids(workflow="etl", status="failed") == (["run-2"], 1)
    assert await ids(since="1d") == (history[:6], 6)

    row = payload(await api("GET", "executions", params={"limit": "1"}))["executions"][0]
    assert row["workflow"] == "etl" and row["status"] == "succeeded" and row["trigger"] == "cron"
    assert row["duration"] == pytest.approx(2.0)
    assert row["ended_at"] - row["started_at"] == pytest.approx(2.0)
    assert row["task_count"] == 3 and row["error"] is None


@pytest.mark.parametrize(
    ("params", "word"),
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"offset": "-1"}, "offset"),
        ({"status": "sleeping"}, "status"),
        ({"since": "yesterday-ish"}, "since"),
    ],
)
async def test_bad_execution_filters_are_400(api: Fetch, params: dict[str, str], word: str) -> None:
    response = await api("GET", "executions", params=params)
    assert response.code == 400
    assert word in payload(response)["message"]


async def test_detail_log_and_health_of_recorded_runs(api: Fetch, history: list[str]) -> None:
    detail = payload(await api("GET", "executions", "run-6", params={"logs": "1"}))
    assert detail["status"] == "failed" and detail["error"] == "task t0 failed"
    assert [t["log_tail"] for t in detail["tasks"]][0] == ["run-6 t0 line 2"]
    assert detail["tasks"][0]["attempts"][0]["status"] == "failed"

    log = payload(await api("GET", "executions", "run-6", "tasks", "t1", "log"))
    assert [line["text"] for line in log["lines"]] == ["run-6 t1 line 1", "run-6 t1 line 2"]

    health = payload(await api("GET", "health"))
    assert health["overall"]["runs"] == 7 and health["overall"]["failed"] == 2
    load = next(w for w in health["workflows"] if w["workflow"] == "load")
    assert (load["runs"], load["last_status"]) == (2, "failed")
    assert isinstance(load["last_started_at"], str)  # ISO 8601, as `workflow monitor --json`
    assert {t["task_id"] for t in health["tasks"]} == {"t0", "t1", "t2"}
    recent = payload(await api("GET", "health", params={"workflow": "etl", "since": "1d"}))
    assert recent["overall"]["runs"] == 4
    assert (await api("GET", "health", params={"since": "soon"})).code == 400


async def test_the_detail_says_where_each_attempt_ran(api: Fetch, jp_root_dir: Path) -> None:
    w1, w2 = "tcp://10.0.0.7:40123", "tcp://10.0.0.8:40555"
    execution = synthetic_execution("on-dask", started_at=time.time(), tasks=2)
    execution.executor, execution.cluster = "dask", "tcp://10.0.0.5:8786"
    execution.dashboard = "http://10.0.0.5:8787/status"
    t0 = execution.tasks["t0"]
    t0.attempts.append(Attempt(2, State.SUCCEEDED, t0.started_at, t0.ended_at, exit_code=0))
    for attempt, worker in zip(t0.attempts, (w1, w2), strict=True):
        attempt.executor, attempt.worker, attempt.host = "dask", worker, "node"
    write_history(jp_root_dir, [execution])

    detail = payload(await api("GET", "executions", "on-dask"))
    assert (detail["executor"], detail["cluster"], detail["dashboard"]) == (
        "dask",
        "tcp://10.0.0.5:8786",
        "http://10.0.0.5:8787/status",
    )
    tasks = {t["id"]: t for t in detail["tasks"]}
    assert [(a["executor"], a["worker"], a["host"]) for a in tasks["t0"]["attempts"]] == [
        ("dask", w1, "node"),
        ("dask", w2, "node"),
    ]
    assert tasks["t0"]["where"] == w2  # the last attempt's worker
    assert tasks["t1"]["where"] is None and tasks["t1"]["attempts"][0]["worker"] is None


async def test_executed_notebooks_are_listed_relative_to_the_root(
    api: Fetch, jp_root_dir: Path, tmp_path: Path
) -> None:
    execution = synthetic_execution("nb-run", started_at=time.time(), tasks=2)
    inside = jp_root_dir / "workflows" / ".executions" / "artifacts" / "nb-run" / "t0" / "a.ipynb"
    for task, output in zip(execution.tasks.values(), (inside, tmp_path / "b.ipynb"), strict=True):
        task.type = "notebook"
        task.result = {"output": str(output), "recorded": {}}
    execution.file = str(jp_root_dir / HELLO)
    write_history(jp_root_dir, [execution])
    detail = payload(await api("GET", "executions", "nb-run"))
    # ``path``: what the panel's link opens (the copy ``tasks/ID/notebook`` makes of a
    # notebook in the hidden store or outside the root); ``source``: the executed file.
    assert detail["output_notebooks"] == [
        {"task_id": "t0", "path": "workflows/outputs/etl/nb-run/t0.ipynb",
         "source": "workflows/.executions/artifacts/nb-run/t0/a.ipynb"},
        {"task_id": "t1", "path": "workflows/outputs/etl/nb-run/t1.ipynb",
         "source": str(tmp_path / "b.ipynb")},  # outside the root: as recorded
    ]  # fmt: skip
    assert detail["file"] == HELLO


async def test_an_executed_notebook_is_copied_out_of_the_hidden_store_to_open(
    api: Fetch, jp_root_dir: Path, jp_fetch: Any
) -> None:
    execution = synthetic_execution("nb-open", started_at=time.time(), tasks=3)
    hidden = jp_root_dir / "workflows" / ".executions" / "artifacts" / "nb-open" / "t0" / "a.ipynb"
    hidden.parent.mkdir(parents=True)
    hidden.write_text('{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}')
    visible = jp_root_dir / "reports" / "b.ipynb"
    visible.parent.mkdir()
    visible.write_text("{}")
    tasks = list(execution.tasks.values())
    for task, output in zip(tasks, (hidden, visible), strict=False):
        task.type = "notebook"
        task.result = {"output": str(output), "recorded": {}}
    tasks[2].type = "notebook"
    tasks[2].result = {"output": str(jp_root_dir / "gone.ipynb")}
    write_history(jp_root_dir, [execution])

    listed = payload(await api("GET", "executions", "nb-open"))["output_notebooks"]
    first = payload(await api("POST", "executions", "nb-open", "tasks", "t0", "notebook"))
    copy = "workflows/outputs/etl/nb-open/t0.ipynb"
    # the panel shows the path that opens: the one listed is the one the click gets
    assert [n["path"] for n in listed][:2] == [copy, "reports/b.ipynb"]
    assert first == {"execution_id": "nb-open", "task_id": "t0", "path": copy, "copied": True}
    assert (jp_root_dir / copy).read_text() == hidden.read_text()
    again = payload(await api("POST", "executions", "nb-open", "tasks", "t0", "notebook"))
    assert again["path"] == copy and again["copied"] is False
    # The contents API (what JupyterLab opens files with) serves the copy.
    contents = payload(await jp_fetch("api", "contents", *copy.split("/")))
    assert contents["type"] == "notebook"

    own = payload(await api("POST", "executions", "nb-open", "tasks", "t1", "notebook"))
    assert (own["path"], own["copied"]) == ("reports/b.ipynb", False)  # already visible
    gone = await api("POST", "executions", "nb-open", "tasks", "t2", "notebook")
    assert gone.code == 409 and "is gone" in payload(gone)["message"]
    assert (await api("POST", "executions", "nb-open", "tasks", "nope", "notebook")).code == 404
    assert (await api("POST", "executions", "no-such", "tasks", "t0", "notebook")).code == 404


async def test_a_blocked_store_does_not_stall_the_server(
    api: Fetch, history: list[str], jp_root_dir: Path
) -> None:
    from jupyter_workflows.store.lock import IndexLock

    lock = IndexLock(default_store_path(jp_root_dir) / "index.lock")
    lock.acquire()  # as a long write of another process would
    try:
        waiting = asyncio.ensure_future(api("GET", "executions"))
        await asyncio.sleep(0.2)
        assert not waiting.done()
        started = time.perf_counter()
        assert (await api("POST", "validate", body={"path": HELLO})).code == 200
        assert time.perf_counter() - started < 1.0
        assert not waiting.done()
    finally:
        lock.release()
    assert payload(await waiting)["total"] == 7


class TestAuthorization:
    """A server whose authorizer lets users read but not execute."""

    @pytest.fixture
    def jp_server_config(self) -> Any:
        from jupyter_server.auth import Authorizer
        from traitlets.config import Config

        class ReadOnly(Authorizer):
            def is_authorized(self, handler: Any, user: Any, action: str, resource: str) -> bool:
                return action == "read"

        return Config(
            {
                "ServerApp": {
                    "jpserver_extensions": {"jupyter_workflows.server": True},
                    "authorizer_class": ReadOnly,
                }
            }
        )

    async def test_runs_need_the_execute_permission(self, api: Fetch, jp_root_dir: Path) -> None:
        assert (await api("GET", "workflows")).code == 200
        assert (await api("POST", "validate", body={"path": HELLO})).code == 200
        assert (await api("POST", "runs", body={"path": HELLO})).code == 403
        assert (await api("POST", "executions", "x", "cancel")).code == 403
        assert not default_store_path(jp_root_dir).exists()


async def test_unknown_ids_are_404(api: Fetch, history: list[str]) -> None:
    for parts in (
        ("executions", "no-such-run"),
        ("executions", "no-such-run", "tasks", "t0", "log"),
        ("executions", "run-6", "tasks", "no-such-task", "log"),
    ):
        response = await api("GET", *parts)
        assert response.code == 404, parts
        assert "no-such" in payload(response)["message"]
    assert (await api("GET", "executions", "run-")).code == 404  # ambiguous prefix
    assert (await api("GET", "executions", "run-6", params={"logs": "-2"})).code == 400


async def test_an_empty_project_reads_without_creating_a_store(
    api: Fetch, jp_root_dir: Path
) -> None:
    assert payload(await api("GET", "executions"))["total"] == 0
    assert payload(await api("GET", "health"))["overall"]["runs"] == 0
    assert (await api("GET", "executions", "x")).code == 404
    assert all(
        w["last_status"] is None for w in payload(await api("GET", "workflows"))["workflows"]
    )
    assert not default_store_path(jp_root_dir).exists()


# -- bad input ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ("{not json", 400, "not valid JSON"),
        ("[1, 2]", 400, "JSON object"),
        ("", 400, "body is empty"),
        ({}, 400, "'path'"),
        ({"path": HELLO, "paht": 1}, 400, "unknown field(s) paht"),
        ({"path": 42}, 400, "'path'"),
        ({"path": HELLO, "env": ["A=1"]}, 400, "'env'"),
        ({"path": HELLO, "env": {"A": 1}}, 400, "'A' must be a string"),
        ({"path": "../outside.json"}, 400, "outside the server's root"),
        ({"path": "/etc/hostname.json"}, 400, "outside the server's root"),
        ({"path": "workflows/../../x.json"}, 400, "outside the server's root"),
        ({"path": ".cache/old.workflow.json"}, 400, "hidden"),
        ({"path": "notes.txt"}, 400, "not a workflow file"),
        ({"path": "workflows/definitions/none.json"}, 404, "no workflow file"),
        ({"path": "escape.json"}, 400, "outside the server's root"),  # a symlink pointing out
    ],
)
async def test_bad_run_requests_are_refused_with_a_message(
    api: Fetch, jp_root_dir: Path, tmp_path: Path, body: Any, status: int, words: str
) -> None:
    (tmp_path / "elsewhere.json").write_text(json.dumps({"name": "x", "tasks": []}))
    os.symlink(tmp_path / "elsewhere.json", jp_root_dir / "escape.json")
    for endpoint in ("runs", "validate"):
        if endpoint == "validate" and isinstance(body, dict) and "env" in body:
            continue
        response = await api("POST", endpoint, body=body)
        assert response.code == status, (endpoint, response.body)
        assert words in payload(response)["message"]
    assert not default_store_path(jp_root_dir).exists()


async def test_an_invalid_workflow_is_not_run(api: Fetch, jp_root_dir: Path) -> None:
    response = await api("POST", "runs", body={"path": BROKEN})
    assert response.code == 400
    answer = payload(response)
    assert "problem" in answer["message"]
    assert answer["problems"] and {p["file"] for p in answer["problems"]} == {BROKEN}
    assert payload(await api("GET", "executions"))["total"] == 0


async def test_the_server_keeps_working_after_bad_requests(api: Fetch) -> None:
    for body in ("{", "null", {"path": "../../etc/passwd"}, {"path": BROKEN}):
        assert (await api("POST", "runs", body=body)).code == 400
    assert (await api("GET", "executions", "%00")).code in (400, 404)
    assert (await api("GET", "executions", params={"limit": "x"})).code == 400
    execution_id = await start(api, HELLO)
    assert (await wait_for_status(api, execution_id, {"succeeded", "failed"}))["status"] == (
        "succeeded"
    )
    assert (await api("GET", "workflows")).code == 200


# -- speed --------------------------------------------------------------------------------------


async def test_a_page_of_1000_executions_and_a_200_task_detail_come_back_fast(
    api: Fetch, jp_root_dir: Path
) -> None:
    base = time.time() - 1000 * 60
    executions = [
        synthetic_execution(
            f"bulk-{i:04d}",
            workflow=f"wf-{i % 7}",
            started_at=base + i * 60,
            status=State.SUCCEEDED if i % 10 else State.FAILED,
            tasks=200 if i == 500 else 3,
        )
        for i in range(1000)
    ]
    write_history(jp_root_dir, executions)

    started = time.perf_counter()
    response = await api("GET", "executions", params={"limit": "50", "offset": "100"})
    page_s = time.perf_counter() - started
    answer = payload(response)
    assert answer["total"] == 1000 and len(answer["executions"]) == 50
    assert answer["executions"][0]["id"] == "bulk-0899"

    started = time.perf_counter()
    detail = payload(await api("GET", "executions", "bulk-0500"))
    detail_s = time.perf_counter() - started
    assert len(detail["tasks"]) == 200
    assert all(len(t["log_tail"]) == 2 for t in detail["tasks"])
    print(f"\npage of 50 of 1000 executions: {page_s * 1000:.0f} ms; "
          f"detail of 200 tasks: {detail_s * 1000:.0f} ms")  # fmt: skip
    assert page_s < 1.0 and detail_s < 1.0
