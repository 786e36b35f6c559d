"""A run stops when a cancel request for it appears in the store (``engine/orchestrator.py``
``CancelWatch``, ``WorkflowRun.request_cancel``), as the Python API asks it to."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from jupyter_workflows import ExecutionNotRunning, WorkflowOrchestrator
from jupyter_workflows.execution.records import Execution
from jupyter_workflows.execution.states import State
from jupyter_workflows.store.requests import write_request
from tests.conftest import make_workflow


def shell(task_id: str, command: str, **fields: object) -> dict[str, object]:
    return {"id": task_id, "type": "shell", "command": command, **fields}


class Background:
    """``orchestrator.execute`` in a thread, as another process's run would be."""

    def __init__(self, orchestrator: WorkflowOrchestrator, workflow: object):
        self.result: Execution | None = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(orchestrator, workflow))
        self.thread.start()

    def _run(self, orchestrator: WorkflowOrchestrator, workflow: object) -> None:
        try:
            self.result = orchestrator.execute(workflow, raise_on_failure=False)
        except BaseException as exc:
            self.error = exc

    def running_id(self, orchestrator: WorkflowOrchestrator, task: str) -> str:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            for summary in orchestrator.store.history():
                execution = orchestrator.store.get_execution(summary.id)
                if execution.tasks[task].status is State.RUNNING:
                    return execution.id
            time.sleep(0.05)
        raise AssertionError("the run never started")


def test_the_api_cancels_a_run_it_does_not_own(project: Path) -> None:
    orchestrator = WorkflowOrchestrator(project, kill_grace=2.0)
    workflow = make_workflow(
        shell("slow", "sleep 300"), shell("after", "echo never", depends_on=["slow"])
    )
    run = Background(orchestrator, workflow)
    execution_id = run.running_id(orchestrator, "slow")

    asked = time.time()
    cancelled = WorkflowOrchestrator(project).cancel(execution_id[:5])  # by="api", waits
    assert cancelled.status is State.CANCELLED and cancelled.cancelled_by == "api"
    assert cancelled.ended_at is not None and cancelled.ended_at - asked < 2.0
    run.thread.join(10)
    # The owner's execute returns the cancelled record (no exception), tasks stopped or
    # never started.
    assert run.error is None and run.result is not None
    assert run.result.status is State.CANCELLED and run.result.cancelled_by == "api"
    assert run.result.error is not None and "from api" in run.result.error
    assert (run.result.tasks["slow"].status, run.result.tasks["after"].status) == (
        State.CANCELLED,
        State.CANCELLED,
    )
    assert not orchestrator.store.requests_dir.exists() or not list(
        orchestrator.store.requests_dir.iterdir()
    )
    with pytest.raises(ExecutionNotRunning, match="it has ended: cancelled"):
        orchestrator.store.cancel(execution_id)


def test_a_request_that_cannot_be_read_still_stops_the_run(project: Path) -> None:
    orchestrator = WorkflowOrchestrator(project, kill_grace=2.0)
    run = Background(orchestrator, make_workflow(shell("slow", "sleep 300")))
    execution_id = run.running_id(orchestrator, "slow")
    path = orchestrator.store.cancel_request_path(execution_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("not json")
    run.thread.join(10)
    assert run.result is not None and run.result.status is State.CANCELLED
    assert run.result.cancelled_by == "unknown"


def test_a_request_after_the_end_changes_nothing_and_is_cleaned(project: Path) -> None:
    orchestrator = WorkflowOrchestrator(project)
    execution = orchestrator.execute(make_workflow(shell("quick", "true")))
    assert execution.status is State.SUCCEEDED
    stale = orchestrator.store.cancel_request_path(execution.id)
    write_request(stale, "cli")  # arrived as the run ended
    assert orchestrator.store.get_execution(execution.id).status is State.SUCCEEDED
    assert not stale.exists()  # the read that found it ended removed it


def test_a_run_without_a_record_has_no_request_to_watch(project: Path) -> None:
    orchestrator = WorkflowOrchestrator(project, record=False)
    execution = orchestrator.execute(make_workflow(shell("quick", "true")))
    assert execution.status is State.SUCCEEDED
    assert not (project / "workflows").exists()
