"""Hostile values templated into an http task's ``url`` against real servers on 127.0.0.1.

Two recording servers: ``target`` (where the workflow means to go) and ``elsewhere`` (where a
hostile value would like to go). Each records the raw request line it receives. For every
value of a corpus, in every part of the URL, a request either reaches ``target`` at exactly
the path and with exactly the parameters the template spells, carrying the value as data, or
is not sent at all (the task fails saying why); ``elsewhere`` never hears from anyone.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

from jupyter_workflows.execution.states import State
from tests.conftest import make_workflow


@dataclass
class Recorder:
    """A real HTTP server on 127.0.0.1 that answers 200 and remembers what it was asked."""

    server: ThreadingHTTPServer
    requests: list[dict[str, Any]] = field(default_factory=list)

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def _handler(recorder: list[dict[str, Any]]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            recorder.append(
                {"method": self.command, "target": self.path, "headers": dict(self.headers)}
            )
            body = b'{"ok": true}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_PUT = do_DELETE = _answer  # noqa: N815

        def log_message(self, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def servers() -> Iterator[tuple[Recorder, Recorder]]:
    made = []
    for _ in range(2):
        requests: list[dict[str, Any]] = []
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(requests))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        made.append(Recorder(server, requests))
    yield made[0], made[1]
    for recorder in made:
        recorder.server.shutdown()
        recorder.server.server_close()


# Values an attacker controls (a webhook payload, an upstream task's result, an env var).
HOSTILE = [
    "../../admin/delete?id=1#",
    "..",
    ".",
    "../admin",
    "a/b",
    "/admin",
    "//127.0.0.1:1/x",
    "a?admin=true",
    "a#frag",
    "&admin=true",
    "a&admin=true",
    "x=1&y=2",
    "a+b",
    "a b",
    "%2e%2e",
    ".%2e",
    "%2e.",
    "%2F..%2Fadmin",
    "..%2f..%2fadmin",
    "%252e%252e",
    "%",
    "%%32%65",
    "a\\..\\admin",
    "..\\..\\admin",
    "..;",
    "..;/admin",
    ";jsessionid=1",
    "x;admin=1",
    "a\r\nHost: evil",
    "a\nX-Injected: 1",
    "a\x00b",
    "ü/ß",
    "?",
    "#",
    "@",
    "a@127.0.0.1",
    ":",
    "\t",
    "'\"<>`{}|^[]",
]
LEGIT = ["item-42", "2024-01-01T10:00:00", "hello world", "Zoë", "a.b", "...", "a..b", "x_y~z"]


def _run(run_workflow: Any, url: str, env: dict[str, str]) -> Any:
    execution = run_workflow(make_workflow({"id": "call", "type": "http", "url": url}), env=env)
    return execution.tasks["call"]


def _path_and_query(target: str) -> tuple[list[str], dict[str, list[str]]]:
    split = urlsplit(target)
    segments = [unquote(s, errors="strict") for s in split.path.split("/")[1:]]
    return segments, parse_qs(split.query, keep_blank_values=True)


def test_a_value_in_a_path_segment_is_one_segment_or_refused(servers, run_workflow):
    target, elsewhere = servers
    stray, refused = [], []
    for value in HOSTILE + LEGIT:
        target.requests.clear()
        task = _run(run_workflow, target.base + "/items/${env.V}/view", {"V": value})
        if task.status is not State.SUCCEEDED:
            refused.append(value)
            if value not in (".", "..") or "url: ${env.V}" not in task.error or target.requests:
                stray.append((value, task.error))
            continue
        (request,) = target.requests
        segments, query = _path_and_query(request["target"])
        if segments != ["items", value, "view"] or query:
            stray.append((value, request["target"]))
    assert stray == [] and elsewhere.requests == []
    assert sorted(refused) == [".", ".."]


def test_a_value_in_the_query_is_one_parameter_value(servers, run_workflow):
    target, elsewhere = servers
    stray = []
    for value in HOSTILE + LEGIT:
        target.requests.clear()
        task = _run(run_workflow, target.base + "/search?q=${env.V}&page=2", {"V": value})
        if task.status is not State.SUCCEEDED:
            stray.append((value, task.error))
            continue
        (request,) = target.requests
        segments, query = _path_and_query(request["target"])
        if segments != ["search"] or query != {"q": [value], "page": ["2"]}:
            stray.append((value, request["target"]))
    assert stray == [] and elsewhere.requests == []


def test_a_value_as_a_query_name_stays_one_name(servers, run_workflow):
    target, _ = servers
    for value in ["a&admin=true", "x=1", "#", "k+1"]:
        target.requests.clear()
        task = _run(run_workflow, target.base + "/s?${env.V}=1", {"V": value})
        assert task.status is State.SUCCEEDED, task.error
        (request,) = target.requests
        assert _path_and_query(request["target"]) == (["s"], {value: ["1"]})


def test_a_value_in_the_fragment_never_reaches_the_request(servers, run_workflow):
    target, elsewhere = servers
    stray = []
    for value in HOSTILE + LEGIT:
        target.requests.clear()
        task = _run(run_workflow, target.base + "/page#${env.V}", {"V": value})
        if task.status is not State.SUCCEEDED:
            stray.append((value, task.error))
        elif [r["target"] for r in target.requests] != ["/page"]:
            stray.append((value, target.requests))
    assert stray == [] and elsewhere.requests == []


def test_userinfo_values_become_the_credentials_and_nothing_else(servers, run_workflow):
    target, elsewhere = servers
    url = "http://${env.U}:${env.P}@127.0.0.1:" + str(target.port) + "/auth"
    pairs = [
        ("ann", "s3cret"),
        ("ann@127.0.0.1:" + str(elsewhere.port), "x"),
        ("ann", "p@ss/w:rd?#&"),
        ("a:b", "@127.0.0.1:" + str(elsewhere.port) + "/"),
        ("ann/..", "%40%2F"),
    ]
    for user, password in pairs:
        target.requests.clear()
        task = _run(run_workflow, url, {"U": user, "P": password})
        assert task.status is State.SUCCEEDED, (user, password, task.error)
        (request,) = target.requests
        assert request["target"] == "/auth"
        scheme, _, encoded = request["headers"]["Authorization"].partition(" ")
        assert scheme == "Basic"
        assert base64.b64decode(encoded).decode() == f"{user}:{password}"
    assert elsewhere.requests == []


def test_host_and_port_values_must_be_a_host_and_a_port(servers, run_workflow):
    target, elsewhere = servers
    other = str(elsewhere.port)
    hostile_hosts = [
        f"127.0.0.1:{other}/admin?",
        f"127.0.0.1:{other}#",
        f"evil@127.0.0.1:{other}",
        f"127.0.0.1:{target.port}/../admin",
        f"127.0.0.1:{other}\\@127.0.0.1:{target.port}",
        "127.0.0.1 ",
        "",
        "127.0.0.1:99999",
        "-bad-.example",
    ]
    hostile_ports = [f"{target.port}/admin?", f"80@127.0.0.1:{other}", "abc", "99999", "-1", ""]
    refusals = 0
    for value in hostile_hosts:
        task = _run(run_workflow, "http://${env.H}/items", {"H": value})
        assert task.status is State.FAILED and "host" in task.error, (value, task.error)
        refusals += 1
    for value in hostile_ports:
        task = _run(run_workflow, "http://127.0.0.1:${env.PORT}/items", {"PORT": value})
        assert task.status is State.FAILED and "port" in task.error, (value, task.error)
        refusals += 1
    assert refusals == len(hostile_hosts) + len(hostile_ports)
    assert target.requests == [] and elsewhere.requests == []
    # Legitimate hosts and ports still work.
    for url, env in [
        ("http://${env.H}/items", {"H": f"127.0.0.1:{target.port}"}),
        ("http://${env.H}:" + str(target.port) + "/items", {"H": "127.0.0.1"}),
        ("http://127.0.0.1:${env.PORT}/items", {"PORT": str(target.port)}),
        ("http://${env.H}:${env.PORT}/items", {"H": "localhost", "PORT": str(target.port)}),
    ]:
        task = _run(run_workflow, url, env)
        assert task.status is State.SUCCEEDED, (url, task.error)
    assert [r["target"] for r in target.requests] == ["/items"] * 4
    assert elsewhere.requests == []


def test_a_scheme_value_must_be_http_or_https(servers, run_workflow):
    target, elsewhere = servers
    rest = "://127.0.0.1:" + str(target.port) + "/x"
    for value in ["file", "javascript:alert(1)//", f"http://127.0.0.1:{elsewhere.port}/?", ""]:
        task = _run(run_workflow, "${env.SCHEME}" + rest, {"SCHEME": value})
        assert task.status is State.FAILED and "scheme" in task.error, (value, task.error)
    task = _run(run_workflow, "${env.SCHEME}" + rest, {"SCHEME": "http"})
    assert task.status is State.SUCCEEDED, task.error
    assert [r["target"] for r in target.requests] == ["/x"] and elsewhere.requests == []


def test_a_base_url_from_the_environment_keeps_working(servers, run_workflow):
    target, elsewhere = servers
    for base in [target.base, target.base + "/", target.base + "/v1", target.base + "/v1/"]:
        task = _run(run_workflow, "${env.API_URL}/health", {"API_URL": base})
        assert task.status is State.SUCCEEDED, (base, task.error)
    task = _run(run_workflow, "${env.API_URL}", {"API_URL": target.base + "/whole?a=1"})
    assert task.status is State.SUCCEEDED, task.error
    assert [r["target"] for r in target.requests] == [
        "/health",
        "/health",
        "/v1/health",
        "/v1/health",
        "/whole?a=1",
    ]
    # A base that is not an http(s) URL, or whose query would swallow the rest, is refused.
    for base in [
        "file:///etc/passwd",
        f"127.0.0.1:{target.port}",
        f"{target.base}/?next=",
        f"{target.base}/#",
        f"ftp://127.0.0.1:{target.port}",
        "",
        "http://",
    ]:
        task = _run(run_workflow, "${env.API_URL}/health", {"API_URL": base})
        assert task.status is State.FAILED, (base, task.error)
        assert "${env.API_URL}" in task.error and "http" in task.error, task.error
    assert len(target.requests) == 5 and elsewhere.requests == []


def test_the_raw_filter_inserts_a_value_as_it_is(servers, run_workflow, project):
    target, _ = servers
    task = _run(run_workflow, target.base + "/items/${env.V|raw}", {"V": "a/b?c=1"})
    assert task.status is State.SUCCEEDED, task.error
    assert [r["target"] for r in target.requests] == ["/items/a/b?c=1"]


def test_webhook_payload_values_are_encoded_like_any_other(servers, run_workflow):
    target, elsewhere = servers
    payload = {"id": "../../admin/delete?id=1#", "q": "a&admin=true"}
    url = target.base + "/items/${webhook.payload.id}?q=${webhook.payload.q}"
    task = _run(run_workflow, url, {"WEBHOOK_PAYLOAD": json.dumps(payload)})
    assert task.status is State.SUCCEEDED, task.error
    (request,) = target.requests
    assert _path_and_query(request["target"]) == (["items", payload["id"]], {"q": [payload["q"]]})
    task = _run(run_workflow, url, {"WEBHOOK_PAYLOAD": json.dumps({"id": "..", "q": "x"})})
    assert task.status is State.FAILED and "'..'" in task.error
    assert len(target.requests) == 1 and elsewhere.requests == []
