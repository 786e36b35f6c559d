"""The webhook server for real: a tornado server on 127.0.0.1 running real workflows.

Most tests run the server in a thread of this process (its own event loop, a real RunQueue and
store); the last ones run the real ``workflow serve`` command as a user does.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest

from jupyter_workflows.engine import WorkflowOrchestrator
from jupyter_workflows.engine.queue import RunQueue
from jupyter_workflows.errors import ConfigError
from jupyter_workflows.execution.states import State
from jupyter_workflows.project import discover_workflows
from jupyter_workflows.store import ExecutionStore, default_store_path
from jupyter_workflows.triggers.hooks import Hook, build_hooks, default_secret_env
from jupyter_workflows.triggers.signature import sign
from jupyter_workflows.triggers.webhook_server import WebhookServer
from tests.conftest import cli, make_workflow, write_workflow

# Waits until a file named "release" exists in the project root (the task's working directory).
BLOCK = "while [ ! -f release ]; do sleep 0.02; done"


def hook(path: str, command: str, *, name: str = "hooked", secret_env: str | None = None) -> Hook:
    workflow = make_workflow({"id": "t", "type": "shell", "command": command}, name=name)
    return Hook(path, workflow, None, secret_env)


class LiveServer:
    """A WebhookServer with its RunQueue on an event loop in a thread, on a free port."""

    def __init__(self, root: Path, hooks: list[Hook], **options: Any):
        self.root = root
        self.hooks = {h.path: h for h in hooks}
        self.concurrency = options.pop("concurrency", 4)
        self.max_waiting = options.pop("max_waiting", 100)
        self.options = options
        self.logs: list[str] = []
        self._ready = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._serve()), daemon=True)
        self._thread.start()
        assert self._ready.wait(10), "the server did not start"
        self.url = f"http://127.0.0.1:{self.port}"
        self.client = httpx.Client(base_url=self.url, timeout=10)

    async def _serve(self) -> None:
        self.loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        orchestrator = WorkflowOrchestrator(self.root, kill_grace=1.0)
        self.queue = RunQueue(
            orchestrator, concurrency=self.concurrency, max_waiting=self.max_waiting
        )
        self.server = WebhookServer(
            self.queue,
            self.hooks,
            store_dir=default_store_path(self.root),
            log=self.logs.append,
            **self.options,
        )
        self.port = self.server.listen(0, "127.0.0.1")
        self._ready.set()
        await self._stop.wait()
        await self.server.close()
        await self.queue.shutdown(cancel=True)

    def post(self, path: str, body: bytes = b"{}", **headers: str) -> httpx.Response:
        headers = {k.replace("_", "-"): v for k, v in headers.items()}
        return self.client.post(path, content=body, headers=headers)

    def stop(self) -> None:
        if not self._thread.is_alive():
            return
        self.client.close()
        self.loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(15)
        assert not self._thread.is_alive(), "the server did not stop"


@pytest.fixture
def serve(project: Path) -> Iterator[Callable[..., LiveServer]]:
    servers: list[LiveServer] = []

    def start(*hooks: Hook, **options: Any) -> LiveServer:
        servers.append(LiveServer(project, list(hooks), **options))
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


def wait_for(condition: Callable[[], Any], timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError("timed out waiting for the condition")


def finished(root: Path, execution_id: str) -> Any:
    """The execution once it ended (polls the store)."""

    def ended() -> Any:
        try:
            execution = ExecutionStore(default_store_path(root)).get_execution(execution_id)
        except Exception:
            return None
        return execution if execution.status.is_terminal else None

    return wait_for(ended)


def raw(port: int, data: bytes, *, pause_after: int | None = None) -> bytes:
    """Send raw bytes; what the server answers until it closes (or 3 s of silence)."""
    with socket.create_connection(("127.0.0.1", port), timeout=3) as sock:
        sock.sendall(data)
        answer = b""
        try:
            while chunk := sock.recv(65536):
                answer += chunk
        except (TimeoutError, ConnectionResetError):
            pass
    return answer


# --- runs, payload, environment ------------------------------------------------------------


def test_post_answers_202_at_once_and_the_payload_reaches_the_task(serve, project: Path) -> None:
    command = f'{BLOCK}; printf %s "$WEBHOOK_PAYLOAD" > payload.txt; env | grep ^WEBHOOK_ > env.txt'
    live = serve(hook("/trigger/deploy", command))
    body = b'{"ref": "refs/heads/main", "quote": "it\'s $HOME `x`"}'
    answer = live.post("/trigger/deploy/", body, X_GitHub_Delivery="d-1", X_GitHub_Event="push")
    # 202 while the run is still blocked: the answer does not wait for the run.
    assert answer.status_code == 202
    data = answer.json()
    assert data["workflow"] == "hooked" and not (project / "payload.txt").exists()
    (project / "release").touch()
    execution = finished(project, data["execution_id"])
    assert execution.status is State.SUCCEEDED and execution.trigger == "webhook"
    assert (project / "payload.txt").read_bytes() == body
    env = dict(line.split("=", 1) for line in (project / "env.txt").read_text().splitlines())
    assert env["WEBHOOK_PATH"] == "/trigger/deploy"
    assert env["WEBHOOK_DELIVERY_ID"] == "d-1" and env["WEBHOOK_EVENT"] == "push"
    assert Path(env["WEBHOOK_PAYLOAD_FILE"]).read_bytes() == body


def test_bodies_that_cannot_be_an_environment_value_reach_the_task_as_a_file(
    serve, project: Path
) -> None:
    command = 'echo "$${WEBHOOK_PAYLOAD-unset}" > var.txt; cp "$WEBHOOK_PAYLOAD_FILE" body.bin'
    live = serve(hook("/h", command))
    for body in (b"\xff\xfe binary \x00", b"x" * (200 * 1024)):
        (project / "var.txt").unlink(missing_ok=True)
        answer = live.post("/h", body, Content_Type="application/octet-stream")
        assert answer.status_code == 202
        finished(project, answer.json()["execution_id"])
        assert (project / "var.txt").read_text() == "unset\n"
        assert (project / "body.bin").read_bytes() == body
    assert any("WEBHOOK_PAYLOAD not set (the body is not UTF-8" in line for line in live.logs)


def test_invalid_json_with_a_json_content_type_is_run_as_it_came(serve, project: Path) -> None:
    live = serve(hook("/h", 'printf %s "$WEBHOOK_PAYLOAD" > got.txt'))
    answer = live.post("/h", b"{not json", Content_Type="application/json")
    assert answer.status_code == 202
    assert finished(project, answer.json()["execution_id"]).status is State.SUCCEEDED
    assert (project / "got.txt").read_text() == "{not json"


# --- signatures ----------------------------------------------------------------------------


def test_signed_hooks_run_only_correctly_signed_bodies(serve, project: Path) -> None:
    secret = "It's a Secret to Everybody"
    live = serve(hook("/s", "echo ran >> runs.txt", secret_env="HOOK_SECRET"),
                 environ={"HOOK_SECRET": secret})  # fmt: skip
    body = b"Hello, World!"
    good = sign(secret, body)
    assert good.endswith("757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17")
    flipped = good[:-1] + ("0" if good[-1] != "0" else "1")
    import hashlib
    import hmac

    sha1 = "sha1=" + hmac.new(secret.encode(), body, hashlib.sha1).hexdigest()
    refused = [
        live.post("/s", body, X_Hub_Signature_256=flipped),
        live.post("/s", body + b" ", X_Hub_Signature_256=good),
        live.post("/s", body),
        live.post("/s", body, X_Hub_Signature_256=sha1),
        live.post("/s", body, X_Hub_Signature=sha1),
    ]
    assert [r.status_code for r in refused] == [401] * 5
    assert "does not match" in refused[0].json()["message"]
    assert "missing" in refused[2].json()["message"]
    assert "SHA-1" in refused[3].json()["message"] and "SHA-1" in refused[4].json()["message"]
    accepted = live.post("/s", body, X_Hub_Signature_256=good)
    assert accepted.status_code == 202
    finished(project, accepted.json()["execution_id"])
    assert (project / "runs.txt").read_text() == "ran\n"  # only the signed one ran
    assert sum("401 POST /s" in line for line in live.logs) == 5


def test_a_hook_whose_secret_variable_is_missing_refuses_everything(serve, project: Path) -> None:
    live = serve(hook("/s", "echo ran >> runs.txt", secret_env="NOT_SET_SECRET"), environ={})
    body = b"{}"
    answer = live.post("/s", body, X_Hub_Signature_256=sign("", body))
    assert answer.status_code == 503
    assert "NOT_SET_SECRET" not in answer.text  # the caller learns nothing about the server
    assert any("NOT_SET_SECRET is not set" in line for line in live.logs)
    listed = live.client.get("/hooks").json()["hooks"][0]
    assert listed == {"path": "/s", "workflow": "hooked", "secret_required": True}
    time.sleep(0.2)
    assert not (project / "runs.txt").exists()


def test_the_project_default_secret_applies_to_hooks_without_their_own(project: Path) -> None:
    (project / "workflows").mkdir()
    config = project / "workflows" / "config.json"
    config.write_text(json.dumps({"webhook": {"secretEnv": "PROJECT_SECRET"}}))
    assert default_secret_env(project) == "PROJECT_SECRET"
    own = hook("/own", "true", secret_env="OWN")
    hooks = build_hooks([], explicit=own, secret_env=default_secret_env(project))
    assert hooks["/own"].secret_env == "OWN"
    hooks = build_hooks([], explicit=hook("/plain", "true"), secret_env="PROJECT_SECRET")
    assert hooks["/plain"].secret_env == "PROJECT_SECRET"
    config.write_text(json.dumps({"webhook": {"secretEnv": 3}}))
    with pytest.raises(ConfigError, match="secretEnv"):
        default_secret_env(project)


# --- refusals: size, routes, methods, garbage ---------------------------------------------


def test_a_declared_length_over_the_limit_gets_413_before_the_body_is_sent(serve) -> None:
    live = serve(hook("/h", "echo ran >> runs.txt"), max_body=1000)
    head = b"POST /h HTTP/1.1\r\nHost: x\r\nContent-Length: 50000000\r\n\r\n"
    answer = raw(live.port, head + b"x" * 100)  # 100 of the 50 MB announced: never sent
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b"over the limit of 1000 bytes" in answer
    at_limit = live.post("/h", b"x" * 1000)
    assert at_limit.status_code == 202


def test_a_chunked_body_over_the_limit_gets_413_while_it_streams(serve, project: Path) -> None:
    live = serve(hook("/h", "echo ran >> runs.txt"), max_body=1000)
    head = b"POST /h HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    chunks = b"".join(b"%x\r\n%s\r\n" % (300, b"y" * 300) for _ in range(4))  # 1200, no end
    answer = raw(live.port, head + chunks)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    small = head + b"5\r\nhello\r\n0\r\n\r\n"
    assert raw(live.port, small.replace(b"Host: x", b"Host: x\r\nConnection: close")).startswith(
        b"HTTP/1.1 202"
    )
    time.sleep(0.3)
    assert (project / "runs.txt").read_text() == "ran\n"


def test_unknown_paths_404_and_wrong_methods_405_with_allow(serve) -> None:
    live = serve(hook("/h", "true"))
    client = live.client
    assert client.post("/nope").status_code == 404
    assert client.get("/h/extra").status_code == 404
    for method, path, allow in [
        ("GET", "/h", "POST"),
        ("PUT", "/h", "POST"),
        ("DELETE", "/h", "POST"),
        ("POST", "/health", "GET"),
        ("PATCH", "/hooks", "GET"),
    ]:
        answer = client.request(method, path)
        assert (answer.status_code, answer.headers.get("Allow")) == (405, allow), (method, path)
        assert "accepts" in answer.json()["message"]
    unknown = raw(live.port, b"BREW /h HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert unknown.startswith(b"HTTP/1.1 405") and b"Allow: POST" in unknown


def test_health_and_hooks_describe_the_server(serve) -> None:
    live = serve(hook("/a", "true", name="alpha"), hook("/b", "true", secret_env="B_SECRET"),
                 environ={"B_SECRET": "s"}, concurrency=3, max_waiting=7)  # fmt: skip
    health = live.client.get("/health").json()
    assert health["status"] == "ok" and health["uptime"] >= 0 and health["hooks"] == 2
    assert health["queue"] == {"running": 0, "waiting": 0, "concurrency": 3, "max_waiting": 7}
    hooks = {h["path"]: h for h in live.client.get("/hooks").json()["hooks"]}
    assert hooks["/a"]["workflow"] == "alpha" and hooks["/a"]["secret_required"] is False
    assert hooks["/b"] == {"path": "/b", "workflow": "hooked", "secret_required": True}
    assert "B_SECRET" not in live.client.get("/hooks").text


GARBAGE = [
    b"\x00\x01\x02\xff" * 100 + b"\r\n\r\n",
    b"GET\r\n\r\n",
    b"POST /h HTTP/9.9\r\nHost: x\r\n\r\n",
    b"POST /h HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n",
    b"POST /h HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}",  # no Host
    b"POST /h HTTP/1.1\r\nHost: x\r\nContent-Length: banana\r\n\r\n",
    b"POST /h HTTP/1.1\r\nHost: x\r\nContent-Length: 1, 2\r\n\r\n",
    b"POST /h HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n",
    b"POST /h HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 200_000 + b"\r\n\r\n",
    b"POST /%ff%00/../h HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    b"POST /h HTTP/1.1\r\nHost: x\r\nX-GitHub-Delivery: has spaces\r\nConnection: close\r\n\r\n",
]


def test_the_server_survives_garbage(serve, project: Path) -> None:
    live = serve(hook("/h", "echo ran >> runs.txt"))
    answers = [raw(live.port, data) for data in GARBAGE]
    assert not any(answer.startswith(b"HTTP/1.1 5") for answer in answers)
    assert answers[-2].startswith(b"HTTP/1.1 404")
    assert answers[-1].startswith(b"HTTP/1.1 400") and b"printable" in answers[-1]
    with socket.create_connection(("127.0.0.1", live.port)) as sock:
        sock.sendall(b"POST /h HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc")
    answer = live.post("/h", b"{}")  # after a client that went away mid-body
    assert answer.status_code == 202
    finished(project, answer.json()["execution_id"])
    assert (project / "runs.txt").read_text() == "ran\n"  # no garbage request started a run
    assert live.client.get("/health").json()["status"] == "ok"


# --- replays, concurrency ------------------------------------------------------------------


def test_a_repeated_delivery_id_does_not_run_twice_even_after_a_restart(
    serve, project: Path
) -> None:
    live = serve(hook("/h", "echo ran >> runs.txt"), hook("/other", "echo other >> other.txt"))
    first = live.post("/h", b"{}", X_GitHub_Delivery="72d3162e-cc78-11e3-81ab-4c9367dc0958")
    again = live.post("/h", b"{}", X_GitHub_Delivery="72d3162e-cc78-11e3-81ab-4c9367dc0958")
    assert (first.status_code, again.status_code) == (202, 200)
    assert again.json() == {**first.json(), "replayed": True}
    other = live.post("/h", b"{}", X_Delivery_Id="another-one")
    elsewhere = live.post("/other", b"{}", X_Delivery_Id="another-one")  # same id, other hook
    assert other.status_code == elsewhere.status_code == 202
    for answer in (first, other, elsewhere):
        finished(project, answer.json()["execution_id"])
    live.stop()
    restarted = serve(hook("/h", "echo ran >> runs.txt"))
    replay = restarted.post("/h", b"{}", X_GitHub_Delivery="72d3162e-cc78-11e3-81ab-4c9367dc0958")
    assert (
        replay.status_code == 200 and replay.json()["execution_id"] == first.json()["execution_id"]
    )
    time.sleep(0.2)
    assert (project / "runs.txt").read_text() == "ran\nran\n"  # first and "another-one"


def test_a_signed_request_refused_for_a_full_queue_can_be_retried(serve, project: Path) -> None:
    secret = "s3cret"
    live = serve(hook("/s", f"echo $WEBHOOK_DELIVERY_ID >> runs.txt; {BLOCK}", secret_env="K"),
                 environ={"K": secret}, concurrency=1, max_waiting=0)  # fmt: skip
    first, second = b'{"n": 1}', b'{"n": 2}'
    running = live.post("/s", first, X_Hub_Signature_256=sign(secret, first), X_Delivery_Id="a")
    assert running.status_code == 202
    wait_for(lambda: (project / "runs.txt").exists())
    full = live.post("/s", second, X_Hub_Signature_256=sign(secret, second), X_Delivery_Id="b")
    assert full.status_code == 503 and full.headers["Retry-After"] == "5"
    (project / "release").touch()
    finished(project, running.json()["execution_id"])
    # The refused request was not run, so its retry (same signature, same id) is no replay.
    retry = live.post("/s", second, X_Hub_Signature_256=sign(secret, second), X_Delivery_Id="b")
    assert retry.status_code == 202, retry.text
    finished(project, retry.json()["execution_id"])
    assert (project / "runs.txt").read_text() == "a\nb\n"
    record = (default_store_path(project) / "webhooks" / "deliveries.jsonl").read_text()
    # The record holds a hash of each signature, never one that could be sent again.
    assert sign(secret, second)[7:] not in record and sign(secret, first)[7:] not in record


def test_a_request_that_cannot_be_checked_for_replay_is_not_run(serve, project: Path) -> None:
    from jupyter_workflows.store.lock import IndexLock

    secret = "s3cret"
    live = serve(hook("/s", "echo ran >> runs.txt", secret_env="K"), environ={"K": secret})
    live.server.replays.lock_timeout = 0.2
    lock = default_store_path(project) / "webhooks" / "deliveries.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    body = b"{}"
    with IndexLock(lock):  # another server holds the record (or hangs holding it)
        answer = live.post("/s", body, X_Hub_Signature_256=sign(secret, body))
    assert answer.status_code == 503 and answer.headers["Retry-After"] == "5"
    assert "cannot check this request against earlier ones" in answer.json()["message"]
    assert any("cannot check the request against the replay record" in line for line in live.logs)
    time.sleep(0.2)
    assert not (project / "runs.txt").exists()
    assert live.post("/s", body, X_Hub_Signature_256=sign(secret, body)).status_code == 202


def test_runs_are_bounded_and_a_full_wait_list_answers_503(serve, project: Path) -> None:
    command = f"touch started-$WEBHOOK_DELIVERY_ID; {BLOCK}"
    live = serve(hook("/slow", command), concurrency=2, max_waiting=1)
    answers = [live.post("/slow", b"{}", X_Delivery_Id=f"d{n}") for n in range(5)]
    assert [a.status_code for a in answers] == [202, 202, 202, 503, 503]
    assert answers[3].headers["Retry-After"] == "5"
    assert "too many runs queued" in answers[3].json()["message"]
    wait_for(lambda: len(list(project.glob("started-*"))) == 2)
    time.sleep(0.3)  # the third must stay waiting
    assert len(list(project.glob("started-*"))) == 2
    assert live.client.get("/health").json()["queue"] | {} == {
        "running": 2, "waiting": 1, "concurrency": 2, "max_waiting": 1,
    }  # fmt: skip
    (project / "release").touch()
    for answer in answers[:3]:
        assert finished(project, answer.json()["execution_id"]).status is State.SUCCEEDED
    assert live.post("/slow", b"{}", X_Delivery_Id="d3").status_code == 202  # refused: retryable


# --- discovery ----------------------------------------------------------------------------


def test_a_broken_definition_is_reported_and_the_others_are_found(project: Path) -> None:
    definitions = project / "workflows" / "definitions"
    (definitions / "nested").mkdir(parents=True)
    write_workflow(definitions, webhook_workflow("good", "/good"), "good.json")
    (definitions / "nested" / "broken.yaml").write_text("name: broken\ntasks:\n  - id: x\n")
    (definitions / "notes.txt").write_text("not a definition")
    lines: list[str] = []
    found = discover_workflows(project, log=lines.append)
    assert [f.workflow.name for f in found] == ["good"] and found[0].trigger_type == "webhook"
    assert "broken.yaml" in lines[0] and len(lines) >= 2


def webhook_workflow(name: str, path: str, command: str = "true") -> dict[str, Any]:
    return {
        "name": name,
        "trigger": {"type": "webhook", "config": {"webhook": path}},
        "tasks": [{"id": "t", "type": "shell", "command": command}],
    }


def test_duplicate_and_reserved_paths_are_reported(project: Path) -> None:
    definitions = project / "workflows" / "definitions"
    definitions.mkdir(parents=True)
    for name, path in [("a", "/same"), ("b", "same/"), ("c", "/health")]:
        write_workflow(definitions, webhook_workflow(name, path), f"{name}.json")
    lines: list[str] = []
    hooks = build_hooks(discover_workflows(project), log=lines.append)
    assert {p: h.workflow.name for p, h in hooks.items()} == {"/same": "a"}
    assert any("b.json" in line and "a.json has that path" in line for line in lines)
    assert any("reserved" in line for line in lines)
    # --workflow a.json --path /new: a is served there only, so b gets /same
    discovered = discover_workflows(project)
    explicit = Hook("new", discovered[0].workflow, definitions / "a.json")
    hooks = build_hooks(discovered, explicit=explicit, log=lines.append)
    assert {p: h.workflow.name for p, h in hooks.items()} == {"/new": "a", "/same": "b"}


# --- the real command ----------------------------------------------------------------------


class Daemon:
    """``workflow serve --port 0`` as a subprocess; its port read from its first line."""

    def __init__(self, root: Path, *args: str, env: Mapping[str, str] | None = None):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "jupyter_workflows", "serve", "--port", "0", *args],
            cwd=root,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, **(env or {})},
        )
        assert self.proc.stdout is not None
        first = self.proc.stdout.readline()
        assert "listening on http://127.0.0.1:" in first, first + self.proc.stderr.read()
        self.url = first.split("listening on ")[1].strip()
        # The announcement ends with the /health line; read it here, since communicate()
        # reads the pipe itself and would miss what this file object has buffered.
        self.announced = first
        while "/health" not in self.announced and (line := self.proc.stdout.readline()):
            self.announced += line

    def stop(self) -> tuple[int, str, str]:
        self.proc.send_signal(signal.SIGTERM)
        out, err = self.proc.communicate(timeout=15)
        return self.proc.returncode, self.announced + out, err


def history(root: Path) -> list[dict[str, Any]]:
    result = cli(root, "history", "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_workflow_serve_runs_hooks_and_stops_cleanly_on_sigterm(project: Path) -> None:
    definitions = project / "workflows" / "definitions"
    definitions.mkdir(parents=True)
    write_workflow(definitions, webhook_workflow("quick", "/quick", "echo hi"), "quick.json")
    slow = webhook_workflow("slow", "/slow", "touch slow-started; sleep 30")
    write_workflow(definitions, slow, "slow.json")
    (definitions / "broken.json").write_text('{"name": "broken", "tasks": [}')
    daemon = Daemon(project)
    try:
        quick = httpx.post(daemon.url + "/quick", content=b'{"n": 1}', timeout=10)
        assert quick.status_code == 202
        quick_id = quick.json()["execution_id"]
        wait_for(lambda: any(r["id"] == quick_id and r["status"] == "succeeded"
                             for r in history(project)))  # fmt: skip
        assert httpx.post(daemon.url + "/slow", timeout=10).status_code == 202
        wait_for(lambda: (project / "slow-started").exists())
    finally:
        started = time.monotonic()
        code, out, err = daemon.stop()
    assert code == 0, err
    assert time.monotonic() - started < 10
    assert "broken.json" in err and "/quick -> quick" in out and "stopped" in out
    rows = {r["workflow"]: r for r in history(project)}
    assert rows["quick"]["status"] == "succeeded" and rows["slow"]["status"] == "cancelled"
    assert "broken" not in rows


def test_workflow_serve_serves_the_files_the_panel_lists(project: Path) -> None:
    """One discovery rule: a ``*.workflow.yaml`` outside workflows/definitions/ is served too,
    from a sub-folder as well (the project is found above it)."""
    from jupyter_workflows.server.discovery import find_workflow_files

    definitions = project / "workflows" / "definitions"
    definitions.mkdir(parents=True)
    write_workflow(definitions, webhook_workflow("quick", "/quick", "echo hi"), "quick.json")
    analysis = project / "analysis"
    analysis.mkdir()
    (analysis / "deploy.workflow.yaml").write_text(
        "name: deploy\ntrigger:\n  type: webhook\n  config: {webhook: /deploy}\n"
        "tasks:\n  - {id: t, type: shell, command: pwd}\n"
    )
    listed = find_workflow_files(project.resolve())
    assert listed == ["analysis/deploy.workflow.yaml", "workflows/definitions/quick.json"]
    daemon = Daemon(analysis)
    try:
        answer = httpx.post(daemon.url + "/deploy", timeout=10)
        assert answer.status_code == 202
        run_id = answer.json()["execution_id"]
        assert finished(project, run_id).tasks["t"].result == str(project.resolve())
    finally:
        code, out, err = daemon.stop()
    assert code == 0, err
    assert "/deploy -> deploy" in out and "/quick -> quick" in out
    assert os.listdir(analysis) == ["deploy.workflow.yaml"]


def test_workflow_serve_with_an_explicit_workflow_and_bad_options(project: Path) -> None:
    plain = {"name": "plain", "tasks": [{"id": "t", "type": "shell", "command": "true"}]}
    write_workflow(project, plain, "plain.json")
    no_path = cli(project, "serve", "--workflow", "plain.json", "--port", "0", timeout=20)
    assert no_path.returncode == 2 and "no webhook trigger" in no_path.stderr
    no_file = cli(project, "serve", "--path", "/x", timeout=20)
    assert no_file.returncode == 2 and "--path needs --workflow" in no_file.stderr
    daemon = Daemon(project, "--workflow", "plain.json", "--path", "deploy")
    try:
        answer = httpx.post(daemon.url + "/deploy", timeout=10)
        assert answer.status_code == 202 and answer.json()["workflow"] == "plain"
        with socket.socket() as busy:  # the port is taken: a clear error, exit 2
            busy.bind(("127.0.0.1", 0))
            busy.listen()
            port = str(busy.getsockname()[1])
            taken = cli(project, "serve", "--port", port, timeout=20)
        assert taken.returncode == 2 and "cannot listen on 127.0.0.1:" in taken.stderr
    finally:
        code, out, _ = daemon.stop()
    assert code == 0 and "/deploy -> plain" in out
