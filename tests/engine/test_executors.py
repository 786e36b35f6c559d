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
        super().__init__()
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
    execution = WorkflowOrchestrator(project, record=False, executor=executor).execute(
        _workflow(), raise_on_failure=False
    )
    assert execution.tasks["a"].status is State.SUCCEEDED
    assert execution.tasks["b"].status is State.FAILED
    assert executor.attempts == [("a", 1), ("b", 1), ("b", 2)]
    assert not executor.closed  # the caller's to close


def test_an_executor_named_in_the_registry_is_made_and_closed_by_the_run(project: Any) -> None:
    EXECUTORS.register("counting", CountingExecutor)
    CountingExecutor.instances.clear()
    try:
        WorkflowOrchestrator(project, record=False, executor="counting").execute(
            _workflow(), raise_on_failure=False
        )
    finally:
        EXECUTORS.unregister("counting")
    [made] = CountingExecutor.instances
    assert len(made.attempts) == 3 and made.closed


def test_an_unknown_executor_is_refused_with_the_known_names(project: Any) -> None:
    with pytest.raises(WorkflowError, match=r"unknown executor 'ray'; expected one of dask, local"):
        WorkflowOrchestrator(project, record=False, executor="ray").execute(_workflow())


def _overlaps(execution: Any, ids: list[str]) -> bool:
    spans = sorted((execution.tasks[i].started_at, execution.tasks[i].ended_at) for i in ids)
    return any(b[0] < a[1] for a, b in zip(spans, spans[1:], strict=False))


def _gpu_tasks(count: int, amount: float = 1) -> list[dict[str, Any]]:
    return [
        {"id": f"g{i}", "type": "shell", "command": "sleep 0.4", "resources": {"GPU": amount}}
        for i in range(count)
    ]


def test_local_resources_an_undeclared_resource_runs_one_at_a_time(project: Any) -> None:
    execution = WorkflowOrchestrator(project, record=False).execute(
        make_workflow(*_gpu_tasks(3)), max_parallel=3
    )
    assert execution.status is State.SUCCEEDED
    assert not _overlaps(execution, ["g0", "g1", "g2"])


def test_local_resources_declared_in_the_config_bound_how_many_run_at_once(
    project: Any,
) -> None:
    (project / "workflows").mkdir(exist_ok=True)
    (project / "workflows" / "config.json").write_text('{"resources": {"GPU": 2}}')
    execution = WorkflowOrchestrator(project, record=False).execute(
        make_workflow(*_gpu_tasks(4)), max_parallel=4
    )
    assert execution.status is State.SUCCEEDED
    ids = ["g0", "g1", "g2", "g3"]
    assert _overlaps(execution, ids)  # two at once...
    moments = sorted(t for i in ids for t in (execution.tasks[i].started_at,))
    running_at = [
        sum(
            execution.tasks[i].started_at <= m < execution.tasks[i].ended_at  # type: ignore[operator]
            for i in ids
        )
        for m in moments
    ]
    assert max(running_at) == 2  # ...never three


def test_local_resources_a_request_larger_than_the_machine_is_refused_at_start(
    project: Any,
) -> None:
    (project / "workflows").mkdir(exist_ok=True)
    (project / "workflows" / "config.json").write_text('{"resources": {"GPU": 2}}')
    execution = WorkflowOrchestrator(project, record=False).execute(
        make_workflow(*_gpu_tasks(1, amount=3)), raise_on_failure=False
    )
    assert execution.status is State.CRASHED
    assert (
        execution.error
        == "a task needs 3 GPU, and this machine has 2 (resources in the project config)"
    )
    assert execution.tasks["g0"].attempts == []


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
