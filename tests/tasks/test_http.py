"""http tasks against a real HTTP server on 127.0.0.1 (pytest-httpserver), run by the engine."""

from __future__ import annotations

import base64
import json
import re
import socket
import threading
import time
from typing import Any

import pytest
from werkzeug import Request, Response

from jupyter_workflows.execution.states import State
from tests.conftest import make_workflow

TOKEN = "tok-9f8e7d6c5b4a"


def http(task_id: str, url: str, **fields: Any) -> dict[str, Any]:
    return {"id": task_id, "type": "http", "url": url, **fields}


def url(server: Any, path: str) -> str:
    """The server's URL by address: localhost might resolve elsewhere than 127.0.0.1."""
    return f"http://127.0.0.1:{server.port}{path}"


def everything_recorded(execution: Any, events: list[Any]) -> str:
    """All a person could ever see of a run: every event and the final record."""
    records = {tid: task.to_dict() for tid, task in execution.tasks.items()}
    return json.dumps(records, default=str) + "\n".join(repr(e) for e in events)


def test_get_with_templated_query_returns_parsed_json_status_and_headers(httpserver, run_workflow):
    httpserver.expect_request("/items", method="GET").respond_with_json(
        {"items": [1, 2]}, headers={"X-Total": "2", "Set-Cookie": "sid=abc"}
    )
    execution = run_workflow(
        make_workflow(
            http(
                "get",
                url(httpserver, "/items") + "?fixed=1",
                query={"page": "${env.PAGE}", "tag": ["a", "b"], "all": True},
            )
        ),
        env={"PAGE": "2"},
    )
    task = execution.tasks["get"]
    assert task.status is State.SUCCEEDED, task.error
    assert task.result == {"items": [1, 2]} and task.exit_code == 0
    assert task.outputs["status"] == 200
    assert task.outputs["headers"]["x-total"] == "2"
    assert task.outputs["headers"]["content-type"] == "application/json"
    assert "set-cookie" not in task.outputs["headers"]
    (request, _), *_ = httpserver.log
    assert request.args.to_dict(flat=False) == {
        "fixed": ["1"],
        "page": ["2"],
        "tag": ["a", "b"],
        "all": ["true"],
    }
    assert request.headers["User-Agent"].startswith("jupyter-workflows/")
    line = task.log_tail[-1]
    assert re.fullmatch(
        r"GET http://127\.0\.0\.1:\d+/items\?fixed=1&page=2&tag=a&tag=b&all=true -> 200 in \d+ ms",
        line,
    ), line


def test_post_json_and_post_body(httpserver, run_workflow):
    httpserver.expect_request(
        "/json", method="POST", json={"name": "ann", "n": 3, "tags": ["x"]}
    ).respond_with_json({"created": 1}, status=201)
    httpserver.expect_request(
        "/body", method="PUT", data=b"raw ann", headers={"Content-Type": "text/plain"}
    ).respond_with_data("stored", content_type="text/plain")
    httpserver.expect_request(
        "/object-body", method="POST", json={"from": "body"}
    ).respond_with_data("")
    execution = run_workflow(
        make_workflow(
            http(
                "j",
                url(httpserver, "/json"),
                method="post",
                json={"name": "${env.NAME}", "n": 3, "tags": ["x"]},
            ),
            http(
                "b",
                url(httpserver, "/body"),
                method="PUT",
                body="raw ${env.NAME}",
                headers={"Content-Type": "text/plain"},
            ),
            # The original format's `body` may be an object: it goes out as JSON.
            http("o", url(httpserver, "/object-body"), method="POST", body={"from": "body"}),
        ),
        env={"NAME": "ann"},
    )
    j, b, o = (execution.tasks[t] for t in "jbo")
    assert j.status is State.SUCCEEDED and j.result == {"created": 1}
    assert j.outputs["status"] == 201
    assert b.status is State.SUCCEEDED and b.result == "stored"
    assert o.status is State.SUCCEEDED and o.result is None  # an empty body
    assert len(httpserver.log) == 3  # each matched its handler (else a 500 would fail it)


def test_templated_bearer_token_is_sent_and_never_shown(httpserver, run_workflow):
    httpserver.expect_request(
        "/health", headers={"Authorization": f"Bearer {TOKEN}"}
    ).respond_with_json({"status": "ok"})
    # A server that quotes the credential back: the error quotes the body, masked.
    httpserver.expect_request("/private").respond_with_data(f"no key {TOKEN} here", status=404)
    events: list[Any] = []
    secret_headers = {"Authorization": "Bearer ${env.API_TOKEN}", "X-Api-Key": "${env.API_TOKEN}"}
    execution = run_workflow(
        make_workflow(
            # The spec's example, unchanged but for the URL.
            {
                "id": "health-check",
                "name": "Health check",
                "type": "http",
                "url": url(httpserver, "/health"),
                "method": "GET",
                "timeout": 10000,
                "headers": {"Authorization": "Bearer ${env.API_TOKEN}"},
            },
            http(
                "leaky",
                url(httpserver, "/private") + "?api_key=${env.API_TOKEN}&page=1",
                headers=secret_headers,
            ),
            http("basic", url(httpserver, "/private").replace("//", "//bot:${env.API_TOKEN}@")),
        ),
        env={"API_TOKEN": TOKEN},
        sinks=[events.append],
    )
    ok, leaky = execution.tasks["health-check"], execution.tasks["leaky"]
    basic = execution.tasks["basic"]
    assert basic.error.startswith("GET http://bot:***@127.0.0.1:")
    assert ok.status is State.SUCCEEDED and ok.result == {"status": "ok"}
    assert leaky.status is State.FAILED
    assert "api_key=***&page=1" in leaky.error and "404" in leaky.error
    assert leaky.error.endswith("(expected 2xx): no key *** here")
    assert leaky.result == "no key *** here"
    seen = sorted(request.headers.get("Authorization") for request, _ in httpserver.log)
    basic_auth = "Basic " + base64.b64encode(f"bot:{TOKEN}".encode()).decode()
    assert seen == [basic_auth, f"Bearer {TOKEN}", f"Bearer {TOKEN}"]
    (private,) = [request for request, _ in httpserver.log if request.args]
    assert private.args["api_key"] == TOKEN
    shown = everything_recorded(execution, events)
    assert "GET http://127.0.0.1" in shown  # the log lines are in there
    assert TOKEN not in shown


def test_the_tasks_own_environment_is_visible_to_templates(httpserver, run_workflow):
    httpserver.expect_request("/e", headers={"X-Team": "blue"}).respond_with_data("ok")
    execution = run_workflow(
        make_workflow(
            http(
                "e",
                url(httpserver, "/e"),
                environment={"TEAM": "blue"},
                headers={"X-Team": "${env.TEAM}"},
            )
        )
    )
    assert execution.tasks["e"].result == "ok"


def test_results_flow_from_one_request_into_the_next(httpserver, run_workflow):
    httpserver.expect_request("/login", method="POST").respond_with_json({"id": 7})
    httpserver.expect_request("/users/7").respond_with_json({"name": "ann"})
    execution = run_workflow(
        make_workflow(
            http("login", url(httpserver, "/login"), method="POST"),
            http(
                "user",
                url(httpserver, "/users/${tasks.login.result.id}"),
                depends_on=["login"],
            ),
        )
    )
    assert execution.tasks["user"].result == {"name": "ann"}


@pytest.mark.parametrize(
    ("content_type", "body", "expected"),
    [
        ("application/json", b'{"a": [1, null]}', {"a": [1, None]}),
        ("application/problem+json; charset=utf-8", b'{"title": "x"}', {"title": "x"}),
        ("text/plain; charset=utf-8", b'{"looks": "like json"}', '{"looks": "like json"}'),
        ("text/html", "<p>caf\u00e9</p>".encode(), "<p>caf\u00e9</p>"),
        ("application/json", b"not json after all", "not json after all"),
    ],
)
def test_json_responses_are_parsed_and_others_are_text(
    httpserver, run_workflow, content_type, body, expected
):
    httpserver.expect_request("/r").respond_with_data(body, content_type=content_type)
    execution = run_workflow(make_workflow(http("r", url(httpserver, "/r"))))
    assert execution.tasks["r"].status is State.SUCCEEDED
    assert execution.tasks["r"].result == expected


def test_expected_status_list_and_single_value(httpserver, run_workflow):
    httpserver.expect_request("/gone").respond_with_data("gone", status=404)
    httpserver.expect_request("/ok").respond_with_data("fine", status=200)
    execution = run_workflow(
        make_workflow(
            http("gone", url(httpserver, "/gone"), expected_status=[200, 404]),
            http("strict", url(httpserver, "/ok"), method="POST", expected_status=201),
        )
    )
    gone, strict = execution.tasks["gone"], execution.tasks["strict"]
    assert gone.status is State.SUCCEEDED and gone.outputs["status"] == 404
    assert gone.result == "gone"
    assert strict.status is State.FAILED and strict.exit_code == 22
    assert "returned 200 OK (expected 201)" in strict.error


def test_a_404_fails_with_the_status_and_url_in_the_error(httpserver, run_workflow):
    httpserver.expect_request("/missing").respond_with_json({"error": "nope"}, status=404)
    execution = run_workflow(
        make_workflow(http("m", url(httpserver, "/missing"), retry={"attempts": 3}))
    )
    task = execution.tasks["m"]
    assert task.status is State.FAILED and task.exit_code == 22
    assert task.error.startswith(f"GET {url(httpserver, '/missing')} returned 404 NOT FOUND")
    assert "(expected 2xx)" in task.error and '"error": "nope"' in task.error
    # The body and status stay readable for an on_failure handler or continue_on_error.
    assert task.result == {"error": "nope"} and task.outputs["status"] == 404


def test_a_404_is_not_retried_even_with_retries_configured(httpserver, run_workflow):
    httpserver.expect_request("/missing").respond_with_data("nope", status=404)
    execution = run_workflow(
        make_workflow(http("m", url(httpserver, "/missing"), retry={"attempts": 3, "delay": "1ms"}))
    )
    task = execution.tasks["m"]
    assert task.status is State.FAILED
    assert len(httpserver.log) == 1 and len(task.attempts) == 1


def test_a_500_is_retried_until_the_server_recovers(httpserver, run_workflow):
    httpserver.expect_ordered_request("/flaky").respond_with_data("overloaded", status=500)
    httpserver.expect_ordered_request("/flaky").respond_with_data("busy", status=503)
    httpserver.expect_ordered_request("/flaky").respond_with_json({"ok": True})
    execution = run_workflow(
        make_workflow(http("f", url(httpserver, "/flaky"), retry={"attempts": 4, "delay": "10ms"}))
    )
    task = execution.tasks["f"]
    assert task.status is State.SUCCEEDED and task.result == {"ok": True}
    assert [a.status for a in task.attempts] == [State.FAILED, State.FAILED, State.SUCCEEDED]
    assert "returned 500 INTERNAL SERVER ERROR" in task.attempts[0].error
    assert "overloaded" in task.attempts[0].error
    assert "returned 503" in task.attempts[1].error
    assert len(httpserver.log) == 3
    httpserver.check_assertions()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_connection_refused_is_a_retryable_failure_naming_the_url(run_workflow):
    url = f"http://127.0.0.1:{_closed_port()}/health"
    execution = run_workflow(
        make_workflow(http("down", url, retry={"attempts": 2, "delay": "5ms"}))
    )
    task = execution.tasks["down"]
    assert task.status is State.FAILED and task.exit_code == 7
    assert task.error == f"GET {url}: cannot connect: Connection refused"
    assert len(task.attempts) == 2  # worth another try: the server may be starting


def test_a_slow_server_times_out(httpserver, run_workflow):
    release = threading.Event()

    def slow(request: Request) -> Response:
        release.wait(5)
        return Response("late")

    httpserver.expect_request("/slow").respond_with_handler(slow)
    started = time.monotonic()
    try:
        execution = run_workflow(
            make_workflow(http("slow", url(httpserver, "/slow"), timeout="300ms"))
        )
    finally:
        release.set()  # free the server's thread for the next test
    elapsed = time.monotonic() - started
    task = execution.tasks["slow"]
    assert task.status is State.TIMED_OUT
    assert "timed out after 300ms" in task.error
    assert elapsed < 2


def test_redirects_are_followed_by_default_and_can_be_kept(httpserver, run_workflow):
    httpserver.expect_request("/old").respond_with_data(
        "", status=302, headers={"Location": "/new"}
    )
    httpserver.expect_request("/new").respond_with_json({"at": "new"})
    old = url(httpserver, "/old")
    execution = run_workflow(
        make_workflow(
            http("follow", old),
            http("keep", old, follow_redirects=False, expected_status=[302]),
            http("unexpected", old, follow_redirects=False),
        )
    )
    follow, keep, unexpected = (execution.tasks[t] for t in ("follow", "keep", "unexpected"))
    assert follow.status is State.SUCCEEDED and follow.result == {"at": "new"}
    assert follow.outputs["status"] == 200
    assert "-> 200 in" in follow.log_tail[-1] and "after 1 redirect(s)" in follow.log_tail[-1]
    assert keep.status is State.SUCCEEDED and keep.outputs["status"] == 302
    assert keep.outputs["headers"]["location"] == "/new"
    assert unexpected.status is State.FAILED and "returned 302 FOUND" in unexpected.error


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"url": "localhost:5000/health"}, "missing an 'http://' or 'https://' protocol"),
        ({"url": "ftp://127.0.0.1/x"}, "unsupported protocol"),
        ({"url": "http://127.0.0.1:1/", "body": "a", "json": {"b": 1}}, "either 'body' or 'json'"),
        (
            {"url": "http://127.0.0.1:1/", "headers": {"X-Token": "a${env.NL}b"}},
            "header X-Token: its value contains a line break",
        ),
        (
            {"url": "http://127.0.0.1:1/", "headers": {"X-Name": "caf\u00e9"}},
            "header X-Name: its value is not ASCII",
        ),
        ({"url": "http://127.0.0.1:1/", "headers": {"X Name": "a"}}, "header name 'X Name'"),
    ],
)
def test_requests_that_cannot_be_sent_fail_clearly(run_workflow, fields, expected):
    execution = run_workflow(
        make_workflow({"id": "bad", "type": "http", "retry": {"attempts": 3}, **fields}),
        env={"NL": "\n"},
    )
    task = execution.tasks["bad"]
    assert task.status is State.FAILED and expected in task.error
    assert task.exit_code == 3
    assert len(task.attempts) == 1  # the same request would fail the same way again


def test_a_secret_in_the_url_is_masked_in_its_encoded_form_too():
    from jupyter_workflows.definition.templates import Scope
    from jupyter_workflows.tasks.http import HttpTask, _build

    secret = "p@ss/w rd&1"
    scope = Scope(env={}, secrets={"TOKEN": secret})
    task = HttpTask(id="t", type="http", url="http://127.0.0.1:9/x?q=${secret.TOKEN}")
    request = _build(task, scope)
    assert request.url.params["q"] == secret
    assert request.shown_url == "http://127.0.0.1:9/x?q=***"
    task = HttpTask(id="t", type="http", url="http://127.0.0.1:9/${secret.TOKEN}/x")
    request = _build(task, scope)
    assert request.url.path == f"/{secret}/x"
    assert request.shown_url == "http://127.0.0.1:9/***/x"
