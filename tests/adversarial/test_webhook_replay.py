"""Probes of webhook replay: a captured signed request sent again must not run again.

The delivery id is not covered by the signature, so the replay protection is keyed on what
the signature covers. Every probe runs the real ``workflow serve`` (one or two processes on
one project) and sends real HTTP requests to it on 127.0.0.1; the signatures are computed
here, independently of the server's own code.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import write_workflow
from tests.triggers.test_webhook_server import Daemon, finished, raw

SECRET = "whsec_a captured request is no key"


def github(body: bytes) -> str:
    return "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()


def stripe(body: bytes, timestamp: int) -> str:
    signed = f"{timestamp}.".encode() + body
    return f"t={timestamp},v1=" + hmac.new(SECRET.encode(), signed, hashlib.sha256).hexdigest()


def slack(body: bytes, timestamp: int) -> dict[str, str]:
    signed = f"v0:{timestamp}:".encode() + body
    digest = hmac.new(SECRET.encode(), signed, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": str(timestamp), "X-Slack-Signature": "v0=" + digest}


def hooked(project: Path, name: str, path: str, **config: Any) -> None:
    """A workflow served at ``path``, signed with $HOOK_KEY; each run appends to <name>.txt."""
    folder = project / "workflows" / "definitions"
    folder.mkdir(parents=True, exist_ok=True)
    trigger = {"type": "webhook", "config": {"webhook": path, "secret_env": "HOOK_KEY", **config}}
    command = f"echo $WEBHOOK_DELIVERY_ID >> {name}.txt"
    workflow = {"name": name, "trigger": trigger,
                "tasks": [{"id": "t", "type": "shell", "command": command}]}  # fmt: skip
    write_workflow(folder, workflow, f"{name}.json")


def serve(project: Path) -> Daemon:
    return Daemon(project, env={"HOOK_KEY": SECRET})


def post(daemon: Daemon, path: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
    return httpx.post(daemon.url + path, content=body, headers=headers, timeout=10)


def runs(project: Path, name: str) -> list[str]:
    path = project / f"{name}.txt"
    return path.read_text().splitlines() if path.exists() else []


def port_of(daemon: Daemon) -> int:
    return int(daemon.url.rsplit(":", 1)[1])


def replayed(answer: httpx.Response, execution_id: str) -> bool:
    data = answer.json()
    return answer.status_code == 200 and data == {**data, "execution_id": execution_id,
                                                  "replayed": True}  # fmt: skip


def test_a_captured_signed_request_runs_once_whatever_its_delivery_id(project: Path) -> None:
    hooked(project, "deploy", "/deploy")
    daemon = serve(project)
    try:
        body = json.dumps({"ref": "refs/heads/main", "after": "4d2c1e"}).encode()
        signature = github(body)
        first = post(daemon, "/deploy", body,
                     {"X-Hub-Signature-256": signature, "X-GitHub-Delivery": "d-1"})  # fmt: skip
        assert first.status_code == 202, first.text
        run_id = first.json()["execution_id"]
        replays = [
            post(daemon, "/deploy", body,
                 {"X-Hub-Signature-256": signature, "X-GitHub-Delivery": "d-2"}),
            post(daemon, "/deploy", body, {"X-Hub-Signature-256": signature}),
            post(daemon, "/deploy", body,
                 {"X-Hub-Signature-256": signature, "X-Delivery-Id": "d-3"}),
            post(daemon, "/deploy/", body,
                 {"X-Hub-Signature-256": signature, "X-GitHub-Delivery": "d-4"}),
        ]  # fmt: skip
        for answer in replays:
            assert replayed(answer, run_id), answer.text
        # Header names and the signature's letters in another case, on the wire as written.
        wire = (
            b"POST /deploy HTTP/1.1\r\nhost: x\r\nconnection: close\r\n"
            b"x-hub-signature-256: " + signature.upper().encode() + b"\r\n"
            b"X-GITHUB-DELIVERY: d-5\r\ncontent-length: %d\r\n\r\n" % len(body) + body
        )
        answer = raw(port_of(daemon), wire)
        assert answer.startswith(b"HTTP/1.1 200"), answer[:300]
        assert run_id.encode() in answer and b'"replayed": true' in answer
        # A new request, signed, still runs.
        other = b'{"ref": "refs/heads/main", "after": "9f8e7d"}'
        headers = {"X-Hub-Signature-256": github(other), "X-GitHub-Delivery": "d-6"}
        fresh = post(daemon, "/deploy", other, headers)
        assert fresh.status_code == 202 and fresh.json()["execution_id"] != run_id
        finished(project, run_id)
        finished(project, fresh.json()["execution_id"])
        time.sleep(0.3)
    finally:
        code, out, err = daemon.stop()
    assert code == 0, err
    assert runs(project, "deploy") == ["d-1", "d-6"]
    assert out.count(f"already run as {run_id}") == 5
    assert SECRET not in out + err and signature[7:] not in out + err


def test_a_replay_to_a_second_serve_process_on_the_same_store_does_not_run(
    project: Path,
) -> None:
    hooked(project, "deploy", "/deploy")
    first_daemon, second_daemon = serve(project), serve(project)
    try:
        body = b'{"after": "1"}'
        first = post(first_daemon, "/deploy", body,
                     {"X-Hub-Signature-256": github(body), "X-GitHub-Delivery": "a-1"})  # fmt: skip
        assert first.status_code == 202
        again = post(second_daemon, "/deploy", body,
                     {"X-Hub-Signature-256": github(body), "X-GitHub-Delivery": "b-1"})  # fmt: skip
        assert replayed(again, first.json()["execution_id"]), again.text
        # The same request to both at the same moment (as behind a load balancer): one run.
        answers: dict[tuple[int, int], httpx.Response] = {}
        for n in range(2, 8):
            request = json.dumps({"after": str(n)}).encode()
            start = threading.Barrier(2)

            def send(which: int, daemon: Daemon, request: bytes = request, n: int = n,
                     start: threading.Barrier = start) -> None:  # fmt: skip
                headers = {"X-Hub-Signature-256": github(request), "X-Delivery-Id": f"{which}-{n}"}
                start.wait()
                answers[n, which] = post(daemon, "/deploy", request, headers)

            threads = [threading.Thread(target=send, args=(which, daemon))
                       for which, daemon in enumerate((first_daemon, second_daemon))]  # fmt: skip
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(20)
            pair = sorted(answers[n, which].status_code for which in (0, 1))
            assert pair == [200, 202], (n, [answers[n, w].text for w in (0, 1)])
            ids = {answers[n, which].json()["execution_id"] for which in (0, 1)}
            assert len(ids) == 1
            finished(project, ids.pop())
        finished(project, first.json()["execution_id"])
        time.sleep(0.3)
    finally:
        stopped = [first_daemon.stop(), second_daemon.stop()]
    assert [code for code, _, _ in stopped] == [0, 0], stopped
    assert sorted(runs(project, "deploy")) == sorted(["a-1"] + [
        f"{w}-{n}" for n in range(2, 8) for w in (0, 1) if answers[n, w].status_code == 202
    ])  # fmt: skip
    assert len(runs(project, "deploy")) == 7


def test_stale_or_future_timestamps_are_refused_and_fresh_ones_run_once(project: Path) -> None:
    hooked(project, "paid", "/stripe", signature="stripe")
    hooked(project, "slash", "/slack", signature="slack", tolerance="2m")
    daemon = serve(project)
    try:
        body = b'{"id": "evt_1", "type": "charge.succeeded"}'
        now = int(time.time())
        for path, tolerance in (("/stripe", 300), ("/slack", 120)):

            def signed(timestamp: int, path: str = path) -> dict[str, str]:
                if path == "/stripe":
                    return {"Stripe-Signature": stripe(body, timestamp)}
                return slack(body, timestamp)

            for timestamp, word in (
                (now - tolerance - 30, "old"),
                (now + tolerance + 30, "future"),
            ):
                refused = post(daemon, path, body, signed(timestamp))
                assert refused.status_code == 403, refused.text
                assert word in refused.json()["message"]
                assert f"{tolerance} s" in refused.json()["message"]
            # A timestamp moved forward without the secret: the signature no longer matches.
            forged = signed(now - tolerance - 30)
            if path == "/stripe":
                forged["Stripe-Signature"] = forged["Stripe-Signature"].replace(
                    f"t={now - tolerance - 30}", f"t={now}"
                )
            else:
                forged["X-Slack-Request-Timestamp"] = str(now)
            assert post(daemon, path, body, forged).status_code == 401
            assert post(daemon, path, body, {}).status_code == 401
            fresh = post(daemon, path, body, {**signed(now - 5), "X-Delivery-Id": "first"})
            assert fresh.status_code == 202, fresh.text
            run_id = fresh.json()["execution_id"]
            again = post(daemon, path, body, {**signed(now - 5), "X-Delivery-Id": "second"})
            assert replayed(again, run_id), again.text
            finished(project, run_id)
        time.sleep(0.3)
    finally:
        code, out, err = daemon.stop()
    assert code == 0, err
    assert runs(project, "paid") == ["first"] and runs(project, "slash") == ["first"]
    assert out.count("403 POST /stripe") == 2 and out.count("403 POST /slack") == 2
    assert SECRET not in out + err


def test_the_memory_lasts_the_configured_window(project: Path) -> None:
    hooked(project, "brief", "/brief", replay_window="1s")
    hooked(project, "stamped", "/stamped", signature="slack", tolerance="2s", replay_window="1s")
    daemon = serve(project)
    try:
        body = b'{"n": 1}'
        sent = int(time.time())
        headers = {"X-Hub-Signature-256": github(body)}
        first = post(daemon, "/brief", body, {**headers, "X-Delivery-Id": "one"})
        stamped = post(daemon, "/stamped", body, {**slack(body, sent), "X-Delivery-Id": "one"})
        assert (first.status_code, stamped.status_code) == (202, 202), stamped.text
        assert replayed(post(daemon, "/brief", body, headers), first.json()["execution_id"])
        time.sleep(max(0.0, sent + 3.2 - time.time()))  # past both, in whole seconds
        # Past the window a GitHub-style signature is forgotten: the same body runs again
        # (documented: a sender must not mean two runs by one body within the window) ...
        later = post(daemon, "/brief", body, {**headers, "X-Delivery-Id": "two"})
        assert later.status_code == 202, later.text
        # ... while a timestamped one is refused by its timestamp once it is forgotten.
        stale = post(daemon, "/stamped", body, {**slack(body, sent), "X-Delivery-Id": "two"})
        assert stale.status_code == 403 and "old" in stale.json()["message"]
        for answer in (first, stamped, later):
            finished(project, answer.json()["execution_id"])
        time.sleep(0.3)
    finally:
        code, _, err = daemon.stop()
    assert code == 0, err
    assert runs(project, "brief") == ["one", "two"] and runs(project, "stamped") == ["one"]


def test_a_timestamped_hook_without_a_secret_is_not_served(project: Path) -> None:
    folder = project / "workflows" / "definitions"
    folder.mkdir(parents=True)
    write_workflow(folder, {
        "name": "open", "trigger": {"type": "webhook",
                                    "config": {"webhook": "/open", "signature": "stripe"}},
        "tasks": [{"id": "t", "type": "shell", "command": "echo ran >> open.txt"}],
    }, "open.json")  # fmt: skip
    daemon = Daemon(project)
    try:
        body = b"{}"
        answer = post(daemon, "/open", body, {"Stripe-Signature": stripe(body, int(time.time()))})
        assert answer.status_code == 404
    finally:
        code, out, err = daemon.stop()
    assert code == 0
    assert "open.json" in err and "needs a secret" in err
    assert not (project / "open.txt").exists()
