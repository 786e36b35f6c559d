"""``WorkflowOrchestrator.execute``: a run that does not succeed raises, unless asked not to."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from jupyter_workflows import TaskFailure, WorkflowError, WorkflowFailed
from jupyter_workflows.engine import WorkflowOrchestrator
from jupyter_workflows.execution.states import State
from tests.conftest import make_workflow


def shell(task_id: str, command: str, **fields: object) -> dict[str, object]:
    return {"id": task_id, "type": "shell", "command": command, **fields}


FAILING = make_workflow(
    shell("ok", "echo fine"),
    shell("broken", "echo 'no such table' >&2; exit 3"),
    shell("slow", "sleep 5", timeout="200ms"),
    shell("after", "true", depends_on=["broken"]),
    name="nightly",
)


def test_a_failed_run_raises_with_the_failed_tasks_and_their_errors(project: Path) -> None:
    orchestrator = WorkflowOrchestrator(project)
    with pytest.raises(WorkflowFailed) as caught:
        orchestrator.execute(FAILING)
    failed = caught.value
    assert isinstance(failed, WorkflowError)
    execution = failed.execution
    assert execution.status is State.FAILED
    assert execution.tasks["ok"].status is State.SUCCEEDED  # the run went as far as it could
    assert failed.failures == [
        TaskFailure("broken", "failed", "exited with code 3: no such table"),
        TaskFailure("slow", "timed_out", "timed out after 200ms"),
    ]
    assert str(failed) == (
        f"workflow 'nightly' failed (execution {execution.id}):\n"
        "  broken (failed): exited with code 3: no such table\n"
        "  slow (timed_out): timed out after 200ms"
    )
    # recorded like any run
    assert orchestrator.store.get_execution(execution.id).status is State.FAILED


def test_raise_on_failure_false_returns_the_failed_execution(project: Path) -> None:
    execution = WorkflowOrchestrator(project).execute(FAILING, raise_on_failure=False)
    assert execution.status is State.FAILED
    assert execution.tasks["after"].status is State.SKIPPED


def test_a_run_that_succeeds_returns_its_execution(project: Path) -> None:
    execution = WorkflowOrchestrator(project).execute(make_workflow(shell("a", "echo hi")))
    assert execution.status is State.SUCCEEDED and execution.tasks["a"].result == "hi"
    assert execution.raise_for_status() is execution


def test_continue_on_error_is_not_a_failed_run(project: Path) -> None:
    workflow = make_workflow(shell("a", "exit 1", continue_on_error=True), shell("b", "true"))
    execution = WorkflowOrchestrator(project).execute(workflow)
    assert execution.status is State.SUCCEEDED


def test_the_message_stays_bounded(project: Path) -> None:
    tasks = [shell(f"t{i:02}", f"printf 'x%.0s' $(seq 2000); exit {i + 1}") for i in range(14)]
    with pytest.raises(WorkflowFailed) as caught:
        WorkflowOrchestrator(project, record=False).execute(make_workflow(*tasks), max_parallel=4)
    lines = str(caught.value).splitlines()
    assert len(lines) == 1 + WorkflowFailed.MAX_LISTED + 1
    assert lines[-1] == "  ... and 4 more"
    assert all(len(line) <= WorkflowFailed.MAX_ERROR + 2 for line in lines[1:])
    assert len(caught.value.failures) == 14


def test_execute_async_raises_too(project: Path) -> None:
    orchestrator = WorkflowOrchestrator(project, record=False)
    with pytest.raises(WorkflowFailed, match="broken \\(failed\\)"):
        asyncio.run(orchestrator.execute_async(FAILING))
    execution = asyncio.run(orchestrator.execute_async(FAILING, raise_on_failure=False))
    assert execution.status is State.FAILED
