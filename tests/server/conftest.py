"""A real Jupyter server (pytest-jupyter) with the extension enabled, rooted in a project with
workflows, and ``api`` to talk to its REST API.

pytest-jupyter's fixtures and hooks come in by a star import rather than ``pytest_plugins``:
pytest refuses ``pytest_plugins`` in a conftest below the rootdir once the whole suite is
collected, and this way its autouse fixtures (environment, home directory) stay in here.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from pytest_jupyter.jupyter_server import *  # noqa: F403
from tornado.httpclient import HTTPClientError, HTTPResponse
from traitlets.config import Config

API = ("jupyter-workflows", "api")

WORKFLOWS: dict[str, dict[str, Any]] = {
    "workflows/definitions/hello.json": {
        "name": "hello",
        "description": "says hello twice",
        "trigger": {"type": "manual"},
        "tasks": [
            {"id": "greet", "type": "shell", "command": "echo hello; echo to-err >&2"},
            {"id": "again", "type": "shell", "command": "echo again", "depends_on": ["greet"]},
        ],
    },
    "workflows/definitions/slow.json": {
        "name": "slow",
        "tasks": [{"id": "nap", "type": "shell", "command": "echo napping; sleep 30"}],
    },
    "workflows/definitions/ticker.json": {
        "name": "ticker",
        "tasks": [
            {
                "id": "tick",
                "type": "shell",
                "command": "for i in 1 2 3 4 5; do echo tick$i; sleep 0.2; done",
            },
            {"id": "done", "type": "shell", "command": "echo finished", "depends_on": ["tick"]},
        ],
    },
    "workflows/definitions/flaky.json": {
        "name": "flaky",
        "tasks": [
            {
                "id": "boom",
                "type": "shell",
                "command": "echo trying; exit 3",
                "retry": {"attempts": 2, "delay": 0},
            }
        ],
    },
    "workflows/definitions/broken.json": {
        "name": "broken",
        "tasks": [
            {"id": "a", "type": "shell", "command": "true", "depends_on": ["missing"]},
            {"id": "a", "type": "nope"},
        ],
    },
    "analysis/report.workflow.json": {
        "name": "report",
        "trigger": {"type": "cron", "config": {"schedule": "0 6 * * *"}},
        "tasks": [{"id": "env", "type": "shell", "command": "echo value=$GREETING"}],
    },
}


@pytest.fixture
def jp_server_config() -> Config:
    return Config({"ServerApp": {"jpserver_extensions": {"jupyter_workflows.server": True}}})


@pytest.fixture
def jp_root_dir(tmp_path: Path) -> Path:
    """The server's root: a project with valid, slow, failing and broken workflows, plus files
    the discovery must not list."""
    root = tmp_path / "root_dir"
    for rel, data in WORKFLOWS.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data, indent=2))
    (root / "notes.json").write_text("{}")  # plain JSON outside definitions: not a workflow
    hidden = root / ".cache" / "old.workflow.json"
    hidden.parent.mkdir()
    hidden.write_text(json.dumps(WORKFLOWS["workflows/definitions/hello.json"]))
    modules = root / "node_modules" / "pkg" / "x.workflow.json"
    modules.parent.mkdir(parents=True)
    modules.write_text("{}")
    (root / "workflows" / "definitions" / "cron.yaml").write_text(
        "name: nightly\ntrigger:\n  type: cron\n  config:\n    schedule: '0 3 * * *'\n"
        "tasks:\n  - id: t\n    type: shell\n    command: 'true'\n"
    )
    return root


Fetch = Callable[..., Awaitable[HTTPResponse]]


@pytest.fixture
def api(jp_fetch: Any) -> Fetch:
    """``await api("GET", "workflows")``: the response, whatever its status (no raising)."""

    async def call(method: str, *parts: str, body: Any = None, **kwargs: Any) -> HTTPResponse:
        if body is not None and not isinstance(body, (str, bytes)):
            body = json.dumps(body)
        if method == "POST" and body is None:
            body = ""
        try:
            return await jp_fetch(*API, *parts, method=method, body=body, **kwargs)
        except HTTPClientError as exc:
            assert exc.response is not None, exc
            return exc.response

    return call
