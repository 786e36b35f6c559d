"""What a start of the `workflow` command costs: modules and validators it must not build.

Real processes: ``python -X importtime`` lists every module a command imported, and a child
interpreter says which task validators were built.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import cli, write_workflow

ONE = {"name": "one", "tasks": [{"id": "a", "type": "shell", "command": "true"}]}


def imported(project: Path, *args: str) -> set[str]:
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "jupyter_workflows", *args],
        cwd=project, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    lines = [line.split("|") for line in result.stderr.splitlines() if line.startswith("import")]
    return {parts[-1].strip() for parts in lines if len(parts) == 3}


def test_a_run_with_its_alert_rules_never_imports_duckdb(project: Path) -> None:
    write_workflow(project, ONE)
    for _ in range(3):  # with history: the rules read the workflow's recent runs, not the index
        modules = imported(project, "run", "wf.json")
        assert "duckdb" not in modules and "jupyter_workflows.monitor.rules" in modules
    assert "rich" not in modules and "httpx" not in modules  # no channel but the console
    # A command with nothing to fill in needs no shell analysis; default rules no JS parser.
    assert "jupyter_workflows.definition.shell_quoting" not in modules
    assert "jupyter_workflows.definition.js_conditions" not in modules
    # The run records through the journal: the index's query modules stay unloaded.
    assert not {"jupyter_workflows.store.queries", "jupyter_workflows.store.models"} & modules
    assert json.loads(cli(project, "history", "--json").stdout)[0]["status"] == "succeeded"


def test_a_run_of_an_http_task_imports_httpx_without_its_command_line(project: Path) -> None:
    """httpx's own command line (httpx._main) imports rich, click's extras and pygments: a
    third of an http task's start. The ``workflow`` process never calls it."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Ok(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Ok)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/"
        task = {"id": "a", "type": "http", "url": url, "expected_status": 204}
        write_workflow(project, {"name": "web", "tasks": [task]})
        modules = imported(project, "run", "wf.json")
    finally:
        server.shutdown()
    assert "httpx" in modules
    assert not {"rich", "pygments", "pydantic"} & modules  # (httpx._main is the stand-in)
    assert json.loads(cli(project, "history", "--json").stdout)[0]["status"] == "succeeded"
    # and whoever asks for it still gets httpx's command line
    code = (
        "from jupyter_workflows.cli.common import skip_httpx_command_line\n"
        "skip_httpx_command_line()\n"
        "import httpx, httpx._main\n"
        "print(httpx.main is httpx._main.main, httpx._main.print_help.__module__)\n"
    )
    shown = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           timeout=60, check=True).stdout.split()  # fmt: skip
    assert shown == ["True", "httpx._main"]  # the real module's, forwarded


def test_validate_and_help_stay_light(project: Path) -> None:
    write_workflow(project, ONE)
    modules = imported(project, "validate", "wf.json")
    assert not {"duckdb", "asyncio", "rich", "httpx"} & modules
    # Loaded only to say more: close-match suggestions, --strict's original spellings.
    assert not {"difflib", "jupyter_workflows.definition.original"} & modules
    assert "jupyter_workflows.definition.original" in imported(project, "validate", "--strict",
                                                               "wf.json")  # fmt: skip
    assert not {"duckdb", "pydantic", "rich", "json"} & imported(project, "--help")


def test_only_the_task_types_a_workflow_uses_get_a_validator(project: Path) -> None:
    code = (
        "from jupyter_workflows.definition.model import Workflow, task_models\n"
        "Workflow.model_validate({'name': 'w', 'tasks': [{'id': 'a', 'type': 'shell', "
        "'command': 'true', 'on_failure': {'type': 'http', 'url': 'http://x'}}]})\n"
        "print(sorted(n for n, m in task_models().items() if m.__pydantic_complete__))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "['http', 'shell']"
