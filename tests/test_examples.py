"""The example workflows in workflows/definitions validate and run to completion.

They run in a copy of the project so that their builds, deploys and history stay out of the
checkout. Steps that need long work are guarded by the flags the examples document.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.conftest import cli

REPO = Path(__file__).resolve().parents[1]
DEFINITIONS = sorted((REPO / "workflows" / "definitions").glob("*.json"))
SKIP = {".venv", ".git", "build", "dist", ".deploy", ".executions", "__pycache__", ".pytest_cache",
        ".mypy_cache", ".ruff_cache", "node_modules", ".benchmarks"}  # fmt: skip


@pytest.fixture(scope="module")
def repo_copy(tmp_path_factory) -> Path:
    target = tmp_path_factory.mktemp("examples") / "project"
    shutil.copytree(REPO, target, ignore=lambda _d, names: [n for n in names if n in SKIP])
    return target


def test_there_are_the_three_examples():
    names = {p.name for p in DEFINITIONS}
    assert {"development-workflow.json", "ci-cd-workflow.json", "scheduled-tasks.json"} <= names


@pytest.mark.parametrize("path", DEFINITIONS, ids=lambda p: p.name)
def test_example_validates_without_problems(path):
    result = cli(REPO, "validate", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "warning" not in result.stdout + result.stderr


def _run(root: Path, name: str, *env: str) -> dict:
    args = ["run", f"workflows/definitions/{name}", "--json"]
    if env:
        args += ["--env", ",".join(env)]
    result = cli(root, *args, timeout=600)
    assert result.stdout, result.stderr
    execution = json.loads(result.stdout[result.stdout.index("{") :])
    if result.returncode != 0:  # show the failing tasks' output, not just their exit codes
        status = cli(root, "status", execution["id"], "--logs", "30")
        pytest.fail(f"{name} failed:\n{status.stdout}{status.stderr}{result.stderr}")
    return {t["id"]: t for t in execution["tasks"]}


def test_development_workflow_runs(repo_copy):
    tasks = _run(repo_copy, "development-workflow.json", "TYPE_CHECK=false")
    assert tasks["verify-setup"]["result"]["jupyter_workflows"]
    schema = json.loads((repo_copy / "build" / "workflow.schema.json").read_text())
    assert "tasks" in schema["properties"]
    assert tasks["type-check"]["status"] == "skipped"


def test_ci_cd_workflow_builds_validates_and_deploys_locally(repo_copy):
    tasks = _run(repo_copy, "ci-cd-workflow.json", "DEPLOY_FRONTEND=true", "DEPLOY_BACKEND=true")
    assert tasks["test"]["status"] == "skipped"  # RUN_TESTS is not set: no recursion
    assert tasks["validate-build"]["result"]["wheel"].endswith(".whl")
    backend = repo_copy / ".deploy" / "backend"
    assert any(p.suffix == ".whl" for p in backend.iterdir())
    assert json.loads((backend / "manifest.json").read_text())["files"]
    assert "frontend succeeded; backend succeeded" in tasks["notify"]["result"]


class _Health(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self.send_response(200 if self.path == "/health" else 503)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: object) -> None:
        pass


def test_scheduled_tasks_check_health_and_clean_up(repo_copy):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    old_log = repo_copy / "logs" / "old.log"
    new_log = repo_copy / "logs" / "new.log"
    old_log.parent.mkdir(exist_ok=True)
    old_log.write_text("old")
    new_log.write_text("new")
    ten_days_ago = time.time() - 10 * 86400
    os.utime(old_log, (ten_days_ago, ten_days_ago))
    try:
        url = f"http://127.0.0.1:{server.server_port}/health"
        tasks = _run(repo_copy, "scheduled-tasks.json", f"API_HEALTH_URL={url}")
    finally:
        server.shutdown()
    assert tasks["health-check-api"]["result"]["status"] == 200
    assert tasks["health-check-frontend"]["status"] == "skipped"
    assert tasks["cleanup-logs"]["result"]["removed"] == 1
    assert not old_log.exists() and new_log.exists()


def test_notebook_pipeline_runs_end_to_end(repo_copy):
    tasks = _run(repo_copy, "notebook-pipeline.json", "ROWS=100")
    clean, summarise = tasks["clean"], tasks["summarise"]
    # 3 regions x 100 rows, every 25th dirty: 4 dropped per region
    assert clean["outputs"]["rows_in"] == 300 and clean["outputs"]["rows_out"] == 288
    assert summarise["outputs"]["top_region"] in {"north", "south", "west"}
    executed = Path(summarise["result"]["output"])
    assert executed.is_file() and executed.suffix == ".ipynb"
    assert tasks["enrich"]["result"]["succeeded"] == 3
    report = {row["region"]: row for row in tasks["report"]["result"]}
    assert sum(row["sales"] for row in report.values()) == 288
    assert (
        round(sum(row["amount"] for row in report.values()), 2)
        == summarise["outputs"]["total_amount"]
    )
