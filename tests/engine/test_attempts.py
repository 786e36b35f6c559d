"""The task runner: what an attempt's outcome is recorded as, whatever the task type raises."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any, Literal

import pytest

from jupyter_workflows.definition.model import TaskBase
from jupyter_workflows.engine import WorkflowOrchestrator
from jupyter_workflows.execution.states import State
from jupyter_workflows.plugins import TASK_TYPES
from jupyter_workflows.tasks import registry
from jupyter_workflows.tasks.base import TaskContext, TaskResult, TaskType
from tests.conftest import make_workflow


class RaisingTask(TaskBase):
    type: Literal["raises_timeout"]
    sleep: float = 0.0


class RaisingType(TaskType):
    """A task type whose own work times out (a socket, a library): it raises TimeoutError."""

    name = "raises_timeout"
    model = RaisingTask

    async def run(self, task: RaisingTask, ctx: TaskContext) -> TaskResult:  # type: ignore[override]
        await asyncio.sleep(task.sleep)
        raise TimeoutError("the library's own read timed out")


@pytest.fixture
def raising_type() -> Iterator[None]:
    registry.register("raises_timeout", RaisingType())
    yield
    registry._instances.pop("raises_timeout", None)
    TASK_TYPES.unregister("raises_timeout")


@pytest.mark.parametrize("timeout", [None, 30])
def test_a_timeout_error_raised_by_a_task_type_is_its_failure_not_a_timeout(
    project: Any, raising_type: None, timeout: float | None
) -> None:
    task: dict[str, Any] = {"id": "call", "type": "raises_timeout", "retry": {"attempts": 2}}
    if timeout is not None:
        task["timeout"] = timeout
    execution = WorkflowOrchestrator(project, record=False).execute(
        make_workflow(task), raise_on_failure=False
    )
    call = execution.tasks["call"]
    assert call.status is State.FAILED  # never timed_out: the engine's deadline did not expire
    assert call.error == (
        "internal error in task type 'raises_timeout': "
        'TimeoutError("the library\'s own read timed out")'
    )
    assert "timed out after" not in call.error
    assert any("TimeoutError" in line for line in call.log_tail)  # the traceback is in the log
    assert len(call.attempts) == 2  # a failure like any other: retried


def test_the_engines_own_deadline_is_still_a_timeout(project: Any, raising_type: None) -> None:
    task = {"id": "call", "type": "raises_timeout", "sleep": 5, "timeout": "200ms"}
    execution = WorkflowOrchestrator(project, record=False).execute(
        make_workflow(task), raise_on_failure=False
    )
    call = execution.tasks["call"]
    assert call.status is State.TIMED_OUT
    assert call.error == "timed out after 200ms"
