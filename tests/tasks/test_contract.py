"""One contract every registered task type keeps, checked against each of them.

Success gives status succeeded with a result; failure gives failed with an error a person can
act on; a timeout or a cancellation stops the work (no process left behind) and surfaces as
timed_out / cancelled through the engine, never as a hung run.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from jupyter_workflows.execution.states import State
from jupyter_workflows.plugins import TASK_TYPES
from tests.conftest import make_workflow


def _scripts(root: Path) -> None:
    (root / "ok.js").write_text("console.log(JSON.stringify({ok: true}))\n")
    (root / "bad.js").write_text("console.error('js broke'); process.exit(3)\n")
    (root / "slow.js").write_text("setTimeout(() => {}, 30000)\n")
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook

    cells = {
        "ok": "import jupyter_workflows as jw\njw.record('ok', True)",
        "bad": "raise ValueError('notebook broke')",
        "slow": "import time\ntime.sleep(30)",
    }
    for case, source in cells.items():
        nbformat.write(new_notebook(cells=[new_code_cell(source)]), root / f"{case}.ipynb")


OK_JSON = {"ok": True}


def _leaf(kind: str, case: str) -> dict[str, Any]:
    return {"type": kind, **CASES[kind][case]}


CASES: dict[str, dict[str, Any]] = {
    "shell": {
        "ok": {"command": "echo '{\"ok\": true}'"},
        "bad": {"command": "echo 'shell broke' >&2; exit 3"},
        "slow": {"command": "sleep 30"},
    },
    "python": {
        "ok": {"code": "import json; print(json.dumps({'ok': True}))"},
        "bad": {"code": "import sys; sys.exit('python broke')"},
        "slow": {"code": "import time; time.sleep(30)"},
    },
    "javascript": {
        "ok": {"script": "ok.js"},
        "bad": {"script": "bad.js"},
        "slow": {"script": "slow.js"},
    },
}
# Composites wrap a shell child; what they report differs in shape, not in contract.
CASES["conditional"] = {
    case: {"condition": "true", "then": _leaf("shell", case)} for case in ("ok", "bad", "slow")
}
CASES["parallel"] = {
    case: {"tasks": [{"id": f"{case}-child", **_leaf("shell", case)}]}
    for case in ("ok", "bad", "slow")
}
CASES["loop"] = {
    case: {"items": [1], "then": _leaf("shell", case)} for case in ("ok", "bad", "slow")
}
CASES["http"] = {case: {"url": f"{{server}}/{case}"} for case in ("ok", "bad", "slow")}
# Each file is processed by the javascript case's script; ok.js itself is the (text) input.
CASES["data_processor"] = {
    case: {"input": {"path": "ok.js"}, "processor": {"type": "javascript", "script": f"{case}.js"}}
    for case in ("ok", "bad", "slow")
}
# A busybox image on the test engine (tests/dockerd.py); "{image}" is filled in by the test.
CASES["docker"] = {
    "ok": {"image": "{image}", "command": ["echo", '{"ok": true}']},
    "bad": {"image": "{image}", "command": ["sh", "-c", "echo 'docker broke' >&2; exit 3"]},
    "slow": {"image": "{image}", "command": ["sleep", "30"]},
}
# A query's rows are its result; the slow query never ends until it is interrupted.
CASES["database"] = {
    case: {"config": {"connection": "sqlite:///:memory:", "query": query}}
    for case, query in {
        "ok": "SELECT 1 AS ok",
        "bad": "SELECT * FROM broke",
        "slow": "WITH RECURSIVE r(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM r)"
        " SELECT count(*) FROM r",
    }.items()
}
CASES["notebook"] = {case: {"notebook": f"{case}.ipynb"} for case in ("ok", "bad", "slow")}
EXPECTED_RESULT = {
    "database": [{"ok": 1}],
    "parallel": {"ok-child": OK_JSON},
    "loop": [OK_JSON],
    "data_processor": {
        "processed": 1,
        "succeeded": 1,
        "failed": 0,
        "items": [
            {
                "input": "ok.js",
                "output": None,
                "status": "succeeded",
                "error": None,
                "result": OK_JSON,
            }
        ],
    },
}
EXPECTED_ERROR = {"parallel": "bad-child"}


def test_every_builtin_type_has_a_contract_case():
    assert set(CASES) == set(TASK_TYPES.builtin)


@pytest.fixture(scope="module")
def http_base() -> Iterator[str]:
    """A threaded server on 127.0.0.1 (the slow request must not hold up the others)."""
    from pytest_httpserver import HTTPServer
    from werkzeug import Response

    release = threading.Event()
    server = HTTPServer(host="127.0.0.1", threaded=True)
    server.expect_request("/ok").respond_with_json(OK_JSON)
    server.expect_request("/bad").respond_with_data("http broke", status=500)
    server.expect_request("/slow").respond_with_handler(
        lambda request: Response("late") if release.wait(10) else Response("later")
    )
    server.start()
    yield f"http://127.0.0.1:{server.port}"
    release.set()
    server.stop()


@pytest.fixture(scope="session")
def docker_image() -> Iterator[tuple[str, str]]:
    """(DOCKER_HOST, busybox image): skips without dockerd, fails without it under CI=true."""
    from tests import dockerd

    with dockerd.engine_for_tests() as engine:
        yield engine.host, dockerd.busybox_image(engine.host)


def _task(kind: str, case: str, **extra: Any) -> dict[str, Any]:
    return {"id": case, "type": kind, **CASES[kind][case], **extra}


@pytest.mark.parametrize("kind", sorted(CASES))
def test_success_failure_and_timeout(kind, project, run_workflow, request):
    _scripts(project)
    tasks = [_task(kind, "ok"), _task(kind, "bad"), _task(kind, "slow", timeout="700ms")]
    if kind == "http":
        base = request.getfixturevalue("http_base")
        for task in tasks:
            task["url"] = task["url"].format(server=base)
    env = None
    if kind == "docker":
        host, image = request.getfixturevalue("docker_image")
        env = {"DOCKER_HOST": host}
        for task in tasks:
            task["image"] = image
    started = time.monotonic()
    execution = run_workflow(make_workflow(*tasks), kill_grace=1.0, env=env)
    ok, bad, slow = (execution.tasks[t] for t in ("ok", "bad", "slow"))
    assert ok.status is State.SUCCEEDED
    if kind == "notebook":  # the result names the executed copy, kept with the execution
        assert ok.result["recorded"] == OK_JSON and ok.outputs == OK_JSON
        assert Path(ok.result["output"]).is_file()
    else:
        assert ok.result == EXPECTED_RESULT.get(kind, OK_JSON)
    assert bad.status is State.FAILED
    assert EXPECTED_ERROR.get(kind, "broke") in bad.error
    assert slow.status is State.TIMED_OUT and "timed out" in slow.error
    assert time.monotonic() - started < 6
