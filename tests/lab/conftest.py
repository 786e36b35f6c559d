"""A real ``jupyter lab`` on 127.0.0.1 and Debian's Chromium driven by Playwright.

The server is started by the tests in a temporary project (workflows that succeed, retry,
fail and do not validate, plus a synthetic history of 1,000 executions whose newest has 200
tasks), with its own config, settings and runtime directories so nothing of the machine's
Jupyter set-up leaks in, and the news pop-up off. The browser is never downloaded: outside
CI the browser tests skip when ``/usr/bin/chromium`` is missing; under CI they fail instead.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from jupyter_workflows.execution.records import Attempt, Execution, TaskRecord
from jupyter_workflows.execution.states import State
from jupyter_workflows.store import ExecutionStore, JournalWriter, default_store_path
from jupyter_workflows.store.synth import execution_events

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).parent / "artifacts"
SYNTHETIC_RUNS = 1000
BIG_RUN_TASKS = 200
BIG_RUN_ID = "synthetic-0999-big"
# Names for the synthetic history (they show in the README's screenshot).
SYNTHETIC_NAMES = (
    "nightly-etl",
    "refresh-dashboards",
    "train-churn-model",
    "sync-crm",
    "data-quality",
    "weekly-report",
    "backup-warehouse",
)


def gate(name: str) -> str:
    """A command that waits (up to a minute) until the test creates the file ``name``."""
    return (
        f'echo waiting-for-{name}; for i in $(seq 1200); do [ -f "$WORKFLOW_PROJECT_ROOT/{name}" ]'
        " && exit 0; sleep 0.05; done; exit 1"
    )


WORKFLOWS: dict[str, dict[str, Any]] = {
    "workflows/definitions/hello.json": {
        "name": "hello",
        "description": "greets, then greets again",
        "trigger": {"type": "manual"},
        "tasks": [
            {"id": "greet", "name": "Greet", "type": "shell", "command": "echo hello-from-lab"},
            {
                "id": "again",
                "type": "shell",
                # The first attempt fails, the second succeeds: the panel shows the retry.
                "command": 'if [ "$WORKFLOW_ATTEMPT" = 1 ]; then echo first-try-fails >&2; '
                "exit 1; fi; echo again",
                "retry": {"attempts": 2, "delay": 0},
                "depends_on": ["greet"],
            },
        ],
    },
    "workflows/definitions/failing.json": {
        "name": "failing",
        "trigger": {"type": "manual"},
        "tasks": [
            {
                "id": "explode",
                "type": "shell",
                "command": "echo about-to-fail; echo disk-on-fire >&2; exit 3",
            },
        ],
    },
    "workflows/definitions/gated.json": {
        "name": "gated",
        "description": "waits until the test opens its gate",
        "tasks": [
            {"id": "prepare", "type": "shell", "command": "echo preparing"},
            {
                "id": "wait",
                "type": "shell",
                "command": 'echo waiting; while [ ! -f "$WORKFLOW_PROJECT_ROOT/gate-open" ]; '
                "do sleep 0.05; done; echo opened",
                "depends_on": ["prepare"],
                "timeout": 60,
            },
        ],
    },
    "workflows/definitions/fanout.json": {
        "name": "fanout",
        "description": "two branches at once; the test opens the gates",
        "tasks": [
            {"id": "ready", "type": "shell", "command": gate("fan-start")},
            {
                "id": "fan",
                "type": "parallel",
                "depends_on": ["ready"],
                "tasks": [
                    {"id": "quick", "type": "shell", "command": "echo quick-done"},
                    {"id": "gated", "type": "shell", "command": gate("fan-open")},
                ],
            },
            {"id": "after", "type": "shell", "command": "echo after", "depends_on": ["fan"]},
        ],
    },
    "workflows/definitions/files.json": {
        "name": "files",
        "description": "one file at a time; the second waits until the test opens its gate",
        "tasks": [
            {
                "id": "files",
                "type": "data_processor",
                "input": {"path": "data/*.json"},
                "processor": {"type": "python", "script": "scripts/wait_for_gate.py"},
                "max_parallel": 1,
            },
        ],
    },
    "workflows/definitions/long.json": {
        "name": "long",
        "tasks": [{"id": "nap", "type": "shell", "command": "echo napping; sleep 60"}],
    },
    "workflows/definitions/notebook.json": {
        "name": "notebook",
        "tasks": [{"id": "report", "type": "notebook", "notebook": "notebooks/tiny.ipynb"}],
    },
    "nightly/report.workflow.json": {
        "name": "report",
        "trigger": {"type": "cron", "config": {"schedule": "0 6 * * *"}},
        "tasks": [{"id": "say", "type": "shell", "command": "echo report"}],
    },
    "drafts/broken.workflow.json": {
        "name": "broken",
        "tasks": [{"id": "a", "type": "shell", "command": "true", "depends_on": ["missing"]}],
    },
}

# The inputs and processor of the files workflow: data/b.json waits for its gate file.
DATA_FILES = {
    "data/a.json": '{"n": 1}',
    "data/b.json": '{"n": 2, "gate": "files-open"}',
    "scripts/wait_for_gate.py": (
        "import json, os, sys, time\n"
        "data = json.load(sys.stdin)\n"
        "gate = data.get('gate')\n"
        "root = os.environ['WORKFLOW_PROJECT_ROOT']\n"
        "while gate and not os.path.exists(os.path.join(root, gate)):\n"
        "    time.sleep(0.05)\n"
        "print(json.dumps(data['n']))\n"
    ),
}


def chromium_or_skip() -> str:
    """The browser's path; a skip outside CI when it is missing, a failure under CI."""
    if Path(CHROMIUM).exists():
        return CHROMIUM
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{CHROMIUM} is missing: scripts/test installs Debian's chromium package")
    pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium); browser tests skipped")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def tiny_notebook(path: Path) -> None:
    """A one-cell notebook for the notebook task (its executed copy is kept per run)."""
    import nbformat

    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell("print('the notebook ran')")]
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, path)


def synthetic_history(root: Path, count: int = SYNTHETIC_RUNS) -> None:
    """``count`` finished executions a day ago, the newest with ``BIG_RUN_TASKS`` tasks.

    Written as journals (what ``save_execution`` writes) and ingested in one refresh: saving
    them one by one would take a store session each.
    """
    store = ExecutionStore(default_store_path(root))
    store.journals_dir.mkdir(parents=True, exist_ok=True)
    base = time.time() - 86400 - count * 60
    for n in range(count):
        big = n == count - 1
        start = base + n * 60
        status = State.FAILED if n % 10 == 3 else State.SUCCEEDED
        tasks = BIG_RUN_TASKS if big else 3
        execution = Execution(
            id=BIG_RUN_ID if big else f"synthetic-{n:04d}",
            workflow="feature-backfill" if big else SYNTHETIC_NAMES[n % len(SYNTHETIC_NAMES)],
            status=State.SUCCEEDED if big else status,
            trigger="cron",
            started_at=start,
            ended_at=start + 12.5,
            error="task t1 failed (exit code 1)" if status is State.FAILED and not big else None,
        )
        for t in range(tasks):
            failed = status is State.FAILED and not big and t == 1
            task_state = State.FAILED if failed else State.SUCCEEDED
            execution.tasks[f"t{t}"] = TaskRecord(
                id=f"t{t}",
                name=f"step {t}",
                depends_on=[f"t{t - 1}"] if t else [],
                status=task_state,
                started_at=start + t * 0.05,
                ended_at=start + t * 0.05 + 0.04,
                exit_code=1 if failed else 0,
                attempts=[
                    Attempt(
                        number=1,
                        status=task_state,
                        started_at=start + t * 0.05,
                        ended_at=start + t * 0.05 + 0.04,
                        exit_code=1 if failed else 0,
                    )
                ],
                log_tail=[f"line of t{t}"],
            )
        with JournalWriter(store.journal_path(execution.id)) as write:
            for event in execution_events(execution):
                write(event)
    store.refresh()


@dataclass
class Lab:
    """A running ``jupyter lab``: where it is and how to talk to its API."""

    url: str
    token: str
    root: Path
    process: subprocess.Popen[bytes]
    log: Path

    def api(self, path: str) -> str:
        return f"{self.url}jupyter-workflows/api/{path}"

    def get(self, path: str) -> Any:
        response = httpx.get(
            self.api(path), headers={"Authorization": f"token {self.token}"}, timeout=10
        )
        response.raise_for_status()
        return response.json()


def _wait_ready(lab: Lab, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if lab.process.poll() is not None:
            raise RuntimeError(f"jupyter lab exited early:\n{lab.log.read_text()[-3000:]}")
        try:
            response = httpx.get(f"{lab.url}api/status", params={"token": lab.token}, timeout=2)
            if response.status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"jupyter lab not ready in {timeout} s:\n{lab.log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """``jupyter lab`` (with the installed extensions) serving a fresh project."""
    chromium_or_skip()
    base = tmp_path_factory.mktemp("lab")
    root = base / "project"
    for rel, data in WORKFLOWS.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data, indent=2))
    tiny_notebook(root / "notebooks" / "tiny.ipynb")
    for rel, text in DATA_FILES.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    (root / "nightly" / "settings.json").write_text('{"not": "a workflow"}')
    synthetic_history(root)
    settings = base / "settings"
    notification = settings / "@jupyterlab" / "apputils-extension"
    notification.mkdir(parents=True)
    (notification / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False})
    )
    port, token = free_port(), secrets.token_hex(16)
    env = {
        **os.environ,
        "JUPYTER_CONFIG_DIR": str(base / "config"),
        "JUPYTER_RUNTIME_DIR": str(base / "runtime"),
        "JUPYTERLAB_SETTINGS_DIR": str(settings),
        "JUPYTERLAB_WORKSPACES_DIR": str(base / "workspaces"),
    }
    log = base / "lab.log"
    command = [
        sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root",
        "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
        f"--LabApp.user_settings_dir={settings}",
        f"--LabApp.workspaces_dir={base / 'workspaces'}",
        "--LabApp.expose_app_in_browser=True",
    ]  # fmt: skip
    with log.open("wb") as out:
        process = subprocess.Popen(command, cwd=root, env=env, stdout=out, stderr=out)
    server = Lab(f"http://127.0.0.1:{port}/", token, root, process, log)
    try:
        _wait_ready(server)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def browser(lab: Lab) -> Iterator[Any]:
    """Headless Chromium from Debian (never a Playwright download)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(
            executable_path=chromium_or_skip(), args=CHROMIUM_ARGS, headless=True
        )
        yield instance
        instance.close()


@dataclass
class LabPage:
    """One JupyterLab page for the module, and the errors its scripts raised."""

    page: Any
    errors: list[str]


@pytest.fixture(scope="module")
def lab_page(lab: Lab, browser: Any) -> Iterator[LabPage]:
    """JupyterLab loaded once (about 2 s) in a fresh workspace, the Workflows panel open."""
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    page = context.new_page()
    page.set_default_timeout(20_000)
    loaded = LabPage(page, [])
    page.on("pageerror", lambda error: loaded.errors.append(str(error)))
    page.goto(f"{lab.url}lab/workspaces/{secrets.token_hex(4)}?token={lab.token}")
    page.locator('.lm-TabBar-tab[data-id="jupyter-workflows-panel"]').click()
    page.locator('[data-testid="workflow"]').first.wait_for()
    yield loaded
    context.close()


@pytest.fixture
def page(lab_page: LabPage) -> Iterator[Any]:
    """The page, back to a known state: no dialog, no document, the panel on its lists.

    The panel gets there through its own command ("Show workflow executions"), run by the
    app the page exposes (``expose_app_in_browser``). A script error in the page fails the test.
    """
    page = lab_page.page
    for _ in range(5):  # a dialog a test left open (Escape closes one)
        if not page.locator(".jp-Dialog").count():
            break
        page.keyboard.press("Escape")
    page.evaluate(
        """async () => {
        // A document a test opened may have been changed by JupyterLab itself (an executed
        // notebook gets its metadata updated): close without the save prompt.
        for (const widget of Array.from(window.jupyterapp.shell.widgets('main'))) {
            if (widget.context && widget.context.model) { widget.context.model.dirty = false; }
        }
        await window.jupyterapp.commands.execute('application:close-all');
        await window.jupyterapp.commands.execute('jupyter-workflows:show-executions');
    }"""
    )
    page.locator('[data-testid="workflow"]').first.wait_for()
    page.locator('[data-testid="execution"]').first.wait_for()
    lab_page.errors.clear()
    yield page
    assert not lab_page.errors, f"errors in the page: {lab_page.errors}"


def save_screenshot(page: Any, name: str) -> Path:
    """A screenshot as a test artifact under tests/lab/artifacts/."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=str(path))
    return path


def publish_screenshot(path: Path) -> None:
    """Copy the panel's screenshot to docs/images/ for the README."""
    target = Path(__file__).parents[2] / "docs" / "images" / "workflows-panel.png"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(path, target)
