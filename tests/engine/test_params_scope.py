"""Run parameters in the engine: ``${params.NAME}`` typed, and what a resume compares."""

from __future__ import annotations

from pathlib import Path

from jupyter_workflows.engine import WorkflowOrchestrator
from jupyter_workflows.engine.run import task_hashes
from tests.conftest import make_workflow


def test_params_resolve_typed_and_count_where_a_task_reads_them(project: Path) -> None:
    workflow = make_workflow(
        {"id": "reads", "type": "shell", "command": "echo ${params.n}"},
        {"id": "ignores", "type": "shell", "command": "echo fixed"},
        {"id": "nb", "type": "notebook", "notebook": "x.ipynb"},
        {"id": "loop", "type": "loop", "items": "${params.sizes}",
         "task": {"id": "each", "type": "shell", "command": "echo ${item}"}},
    )  # fmt: skip
    none = task_hashes(workflow, project, {})
    assert none == task_hashes(workflow, project, {}, {})  # no params: hashes as before
    five = task_hashes(workflow, project, {}, {"n": 5, "sizes": [1, 2]})
    six = task_hashes(workflow, project, {}, {"n": 6, "sizes": [1, 2]})
    assert five["reads"] != six["reads"] and five["ignores"] == six["ignores"] == none["ignores"]
    assert five["nb"] != six["nb"]  # every parameter is injected into a notebook
    execution = WorkflowOrchestrator(project).execute(
        workflow.model_copy(update={"tasks": [workflow.tasks[0], workflow.tasks[3]]}),
        params={"n": 5, "sizes": [1, 2]},
    )
    assert execution.tasks["reads"].result == 5
    assert execution.tasks["loop"].status.value == "succeeded"  # the list itself, typed
