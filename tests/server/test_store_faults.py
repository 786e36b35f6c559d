"""A store that cannot be used, seen through the REST API (issue 13): every answer is a JSON
error naming the path (503), never a 500 with a traceback, and a submitted run is refused
before any task starts. The CLI and magics side is ``tests/adversarial/test_store_faults.py``.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from tornado.httpclient import HTTPResponse

Fetch = Callable[..., Awaitable[HTTPResponse]]  # the ``api`` fixture (conftest.py)
STORE = Path("workflows") / ".executions"


def journals_is_a_file(root: Path) -> Path:
    (root / STORE).mkdir(parents=True, exist_ok=True)
    (root / STORE / "journals").write_text("not a folder")
    return root / STORE / "journals"


def lock_is_a_folder(root: Path) -> Path:
    (root / STORE / "index.lock").mkdir(parents=True)
    return root / STORE / "index.lock"


@pytest.fixture(params=[journals_is_a_file, lock_is_a_folder], ids=lambda f: f.__name__)
def culprit(request: pytest.FixtureRequest, jp_root_dir: Path) -> Path:
    return request.param(jp_root_dir)  # type: ignore[no-any-return]


def refused(response: HTTPResponse, culprit: Path) -> None:
    body = response.body.decode()
    assert response.code == 503, body
    assert "Traceback" not in body
    assert str(culprit) in json.loads(body)["message"]


@pytest.mark.parametrize(
    "parts", [("executions",), ("executions", "deadbeef"), ("health",), ("workflows",)]
)
async def test_reads_answer_a_json_error_naming_the_path(
    api: Fetch, culprit: Path, parts: tuple[str, ...]
) -> None:
    refused(await api("GET", *parts), culprit)


async def test_a_run_is_refused_before_any_task_starts(
    api: Fetch, culprit: Path, jp_root_dir: Path, tmp_path: Path
) -> None:
    marker = tmp_path / "task-ran"
    workflow = {"name": "toucher", "tasks": [
        {"id": "touch", "type": "shell", "command": f"touch '{marker}'"}]}  # fmt: skip
    (jp_root_dir / "toucher.workflow.json").write_text(json.dumps(workflow))
    refused(await api("POST", "runs", body={"path": "toucher.workflow.json"}), culprit)
    assert not marker.exists()
