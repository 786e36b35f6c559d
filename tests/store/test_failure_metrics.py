"""Task metrics name the failure a task most often ends with, from real runs."""

from __future__ import annotations

from jupyter_workflows.engine import WorkflowOrchestrator
from tests.conftest import make_workflow


def test_most_common_failure_per_task(project):
    orchestrator = WorkflowOrchestrator(project)
    for code in (3, 3, 4, 0):
        orchestrator.execute(
            make_workflow(
                {"id": "flaky", "type": "shell", "command": f"exit {code}"},
                {"id": "steady", "type": "shell", "command": "true"},
                name="metrics",
            ),
            raise_on_failure=False,
        )
    metrics = {m["task_id"]: m for m in orchestrator.store.task_metrics(workflow="metrics")}
    assert metrics["flaky"]["failures"] == 3
    assert metrics["flaky"]["most_common_failure"] == "exited with code 3"
    assert metrics["steady"]["most_common_failure"] is None
