"""Background runs' handles: they follow the run (repr, HTML, the outputs showing them) and
``await`` gives what a foreground run gives, WorkflowFailed included."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from IPython.core.interactiveshell import InteractiveShell

from jupyter_workflows.errors import WorkflowFailed
from jupyter_workflows.execution.states import State
from jupyter_workflows.jupyter.display import ExecutionView
from tests.conftest import write_workflow
from tests.jupyter import test_magics
from tests.jupyter.test_magics import cell, one_task, store

# The shell and kernel fixtures of the magics' tests, shared as they are.
shell = test_magics.shell
ip = test_magics.ip
kernel = test_magics.kernel


def test_await_gives_the_rich_result_a_foreground_run_shows(
    ip: InteractiveShell, project: Path
) -> None:
    write_workflow(project, one_task("sleep 0.3; echo woke"))
    cell(ip, "handle = %workflow run wf.json --background")
    handle = ip.user_ns["handle"]
    assert "not started yet" in repr(handle) or "running" in repr(handle)
    cell(ip, "finished = await handle")
    finished = ip.user_ns["finished"]
    assert isinstance(finished, ExecutionView)  # not the dataclass's own text
    assert finished.status is State.SUCCEEDED and finished.tasks["nap"].result == "woke"
    assert "Execution(" not in repr(finished) and "<table" in finished._repr_html_()
    # the handle's own views follow the record: ended, succeeded
    assert "succeeded" in repr(handle) and "background run: ended" in repr(handle)
    assert "not started yet" not in handle._repr_html_()


def test_await_of_a_failed_run_raises_workflow_failed_like_a_foreground_run(
    ip: InteractiveShell, project: Path
) -> None:
    write_workflow(project, one_task("echo broken >&2; exit 4"))
    handle = ip.run_line_magic("workflow", "run wf.json --background")
    with pytest.raises(WorkflowFailed, match="nap") as raised:
        handle.result(timeout=30)
    assert raised.value.execution.status is State.FAILED
    # shown by IPython as its message, not the engine's frames
    assert raised.value._render_traceback_() == [f"WorkflowFailed: {raised.value}"]


def test_no_raise_returns_the_failed_run(ip: InteractiveShell, project: Path) -> None:
    write_workflow(project, one_task("exit 4"))
    handle = ip.run_line_magic("workflow", "run wf.json --background --no-raise")
    failed = handle.result(timeout=30)
    assert isinstance(failed, ExecutionView) and failed.status is State.FAILED


def _collect(client: Any, code: str, timeout: float = 60) -> list[dict[str, Any]]:
    """Every iopub message until the cell ``code`` is done, with its parent cell's msg_id."""
    msg_id = client.execute(code)
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        msg = client.get_iopub_msg(timeout=deadline - time.monotonic())
        parent = msg["parent_header"].get("msg_id")
        seen.append({"type": msg["msg_type"], "parent": parent, **msg["content"]})
        idle = msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle"
        if idle and parent == msg_id:
            return [m for m in seen if m["type"] != "status"]
    raise AssertionError(f"the cell did not finish in {timeout}s: {code}")


@pytest.mark.slow
def test_in_a_kernel_the_displayed_handle_follows_the_run_to_its_end(
    kernel: Any, project: Path
) -> None:
    _, client = kernel
    write_workflow(project, one_task("sleep 1.2; echo woke"))
    _collect(client, "%load_ext jupyter_workflows")
    shown = _collect(client, "h = %workflow run wf.json --background\nh")
    [handle_output] = [
        m for m in shown if m["type"] == "display_data" and "text/html" in m["data"]
        and "background run" in m["data"]["text/plain"]
    ]  # fmt: skip
    display_id = handle_output["transient"]["display_id"]
    assert "succeeded" not in handle_output["data"]["text/plain"]  # it has just begun
    time.sleep(0.2)
    waited = _collect(client, "await h")
    updates = [
        m for m in waited
        if m["type"] == "update_display_data" and m["transient"]["display_id"] == display_id
    ]  # fmt: skip
    assert updates, "the handle's output was never refreshed"
    # the last one belongs to the awaiting cell: what nbclient and papermill keep
    assert updates[-1]["parent"] == waited[-1]["parent"]
    final = updates[-1]["data"]
    assert "succeeded" in final["text/plain"] and "background run: ended" in final["text/plain"]
    assert "not started yet" not in final["text/html"]
    [result] = [m for m in waited if m["type"] == "execute_result"]
    assert "<table" in result["data"]["text/html"]  # the rich result, as a foreground run
    assert "Execution(" not in result["data"]["text/plain"]
    assert store(project).history()[0].status == "succeeded"
