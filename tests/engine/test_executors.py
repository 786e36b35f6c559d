"""The executor seam: the engine hands each attempt to an executor, named or given."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from jupyter_workflows.definition.model import TaskBase
from jupyter_workflows.engine import WorkflowOrchestrator
from jupyter_workflows.engine.executors import LocalExecutor
from jupyter_workflows.errors import WorkflowError
from jupyter_workflows.execution.states import State
from jupyter_workflows.plugins import EXECUTORS
from jupyter_workflows.tasks.base import TaskContext, TaskResult, TaskType
from tests.conftest import make_workflow, write_workflow


class CountingExecutor(LocalExecutor):
    """Runs attempts locally, keeping a note of each and of being closed."""

    name = "counting"
    instances: list[CountingExecutor] = []

    def __init__(self) -> None:
        self.attempts: list[tuple[str, int]] = []
        self.closed = False
        CountingExecutor.instances.append(self)

    async def run_attempt(
        self, task_type: TaskType, task: TaskBase, ctx: TaskContext
    ) -> TaskResult:
        self.attempts.append((ctx.task_id, ctx.attempt))
        return await super().run_attempt(task_type, task, ctx)

    async def close(self) -> None:
        self.closed = True


def _workflow() -> Any:
    return make_workflow(
        {"id": "a", "type": "shell", "command": "echo a"},
        {"id": "b", "type": "shell", "command": "exit 3", "retry": {"attempts": 2, "delay": 1},
         "depends_on": ["a"]},
    )  # fmt: skip


def test_an_executor_instance_runs_every_attempt_and_stays_open(project: Any) -> None:
    executor = CountingExecutor()
    execution = WorkflowOrchestrator(project, record=False, executor=executor).execute(_workflow())
    assert execution.tasks["a"].status is State.SUCCEEDED
    assert execution.tasks["b"].status is State.FAILED
    assert executor.attempts == [("a", 1), ("b", 1), ("b", 2)]
    assert not executor.closed  # the caller's to close


def test_an_executor_named_in_the_registry_is_made_and_closed_by_the_run(project: Any) -> None:
    EXECUTORS.register("counting", CountingExecutor)
    CountingExecutor.instances.clear()
    try:
        WorkflowOrchestrator(project, record=False, executor="counting").execute(_workflow())
    finally:
        EXECUTORS.unregister("counting")
    [made] = CountingExecutor.instances
    assert len(made.attempts) == 3 and made.closed


def test_an_unknown_executor_is_refused_with_the_known_names(project: Any) -> None:
    with pytest.raises(WorkflowError, match=r"unknown executor 'ray'; expected one of local"):
        WorkflowOrchestrator(project, record=False, executor="ray").execute(_workflow())


# Run as a user runs `workflow run`, then list what of dask the process imported, at its exit.
_PROBE = textwrap.dedent("""\
    import atexit, sys
    atexit.register(lambda: print("dask modules:", sorted(
        m for m in sys.modules if m.split(".")[0] in ("dask", "distributed"))))
    from jupyter_workflows import ExecutionStore, WorkflowOrchestrator
    from jupyter_workflows.cli import main
    sys.argv = ["workflow", "run", *sys.argv[1:]]
    main()
""")


@pytest.mark.parametrize("how", [[], ["--executor", "local"]], ids=["default", "explicit"])
def test_a_local_run_never_imports_dask(project: Path, how: list[str]) -> None:
    (project / "workflows").mkdir()
    (project / "workflows" / "config.json").write_text('{"executor": "local"}')
    path = write_workflow(project, {"name": "local", "tasks": [
        {"id": "a", "type": "shell", "command": "echo a"},
        {"id": "b", "type": "python", "code": "print('b')", "depends_on": ["a"]},
    ]})  # fmt: skip
    ran = subprocess.run(
        [sys.executable, "-c", _PROBE, str(path), *how],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert ran.returncode == 0, ran.stderr
    assert "tasks run on" not in ran.stdout  # it did run here
    assert ran.stdout.rstrip().splitlines()[-1] == "dask modules: []"
