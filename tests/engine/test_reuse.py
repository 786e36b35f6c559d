"""Reuse decisions (``engine/reuse.py``, ``engine/fingerprint.py``) and the Python API of
resuming: ``WorkflowOrchestrator.execute(..., resume=ID)``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from jupyter_workflows import ResumeRefused
from jupyter_workflows.engine import WorkflowOrchestrator
from jupyter_workflows.engine.fingerprint import definition_hash
from jupyter_workflows.engine.reuse import copy_artifacts, moved, plan_resume
from jupyter_workflows.execution.records import Execution, TaskRecord
from jupyter_workflows.execution.states import State
from tests.conftest import make_workflow


def shell(task_id: str, command: str = "true", **more: Any) -> dict[str, Any]:
    return {"id": task_id, "type": "shell", "command": command, **more}


def old_run(workflow: Any, statuses: dict[str, State], hashes: dict[str, str]) -> Execution:
    execution = Execution(id="old-run", workflow=workflow.name, status=State.FAILED)
    for task_id, status in statuses.items():
        execution.tasks[task_id] = TaskRecord(
            id=task_id, status=status, result=f"{task_id}-value", definition_hash=hashes[task_id]
        )
    return execution


def hashes_of(workflow: Any, root: Path) -> dict[str, str]:
    return {t.id: definition_hash(t, workflow.defaults, {}, root) for t in workflow.tasks}


DIAMOND = (
    shell("a"),
    shell("b", depends_on=["a"]),
    shell("c", depends_on=["a"]),
    shell("d", depends_on=["b", "c"]),
)


def test_what_failed_runs_with_everything_downstream_and_the_rest_is_reused(tmp_path: Path):
    workflow = make_workflow(*DIAMOND)
    hashes = hashes_of(workflow, tmp_path)
    S, F = State.SUCCEEDED, State.FAILED
    old = old_run(workflow, {"a": S, "b": F, "c": S, "d": State.SKIPPED}, hashes)
    plan = plan_resume(workflow, hashes, old)
    assert set(plan.reuse) == {"a", "c"} and plan.reuse["a"].result == "a-value"
    assert plan.run == {"b": "failed in execution old-run", "d": "skipped in execution old-run"}


def test_from_and_only(tmp_path: Path):
    workflow = make_workflow(*DIAMOND)
    hashes = hashes_of(workflow, tmp_path)
    old = old_run(workflow, dict.fromkeys("abcd", State.SUCCEEDED), hashes)
    plan = plan_resume(workflow, hashes, old, from_task="b")
    assert set(plan.reuse) == {"a", "c"} and set(plan.run) == {"b", "d"}
    plan = plan_resume(workflow, hashes, old, only="d")
    assert set(plan.reuse) == {"a", "b", "c"} and set(plan.run) == {"d"} and not plan.skip
    plan = plan_resume(workflow, hashes, old, only="b")
    assert set(plan.reuse) == {"a"} and set(plan.skip) == {"c", "d"}


def test_only_needs_its_upstream_tasks_to_have_succeeded(tmp_path: Path):
    workflow = make_workflow(*DIAMOND)
    hashes = hashes_of(workflow, tmp_path)
    old = old_run(workflow, {**dict.fromkeys("abd", State.SUCCEEDED), "c": State.CRASHED}, hashes)
    with pytest.raises(ResumeRefused, match="upstream task 'c' did not succeed there"):
        plan_resume(workflow, hashes, old, only="d")


def test_a_changed_definition_runs_again_with_its_downstream(tmp_path: Path):
    before = make_workflow(*DIAMOND)
    old = old_run(before, dict.fromkeys("abcd", State.SUCCEEDED), hashes_of(before, tmp_path))
    after = make_workflow(DIAMOND[0], shell("b", "echo new", depends_on=["a"]), *DIAMOND[2:])
    plan = plan_resume(after, hashes_of(after, tmp_path), old)
    assert set(plan.reuse) == {"a", "c"}
    assert plan.run["b"] == "its definition changed since execution old-run"
    assert plan.run["d"] == "upstream task 'b' runs again"


def test_a_run_declared_out_of_order_is_planned_upstream_first(tmp_path: Path):
    workflow = make_workflow(shell("z", depends_on=["y"]), shell("y"))
    hashes = hashes_of(workflow, tmp_path)
    old = old_run(workflow, {"z": State.SUCCEEDED, "y": State.FAILED}, hashes)
    assert set(plan_resume(workflow, hashes, old).run) == {"y", "z"}


def test_the_definition_hash_is_what_the_task_computes(tmp_path: Path):
    (tmp_path / "job.py").write_text("print(1)\n")

    def digest(env: dict[str, str] | None = None, **fields: Any) -> str:
        task = {"id": "t", "type": "python", "script": "job.py", **fields}
        workflow = make_workflow(task)
        return definition_hash(workflow.tasks[0], workflow.defaults, env or {}, tmp_path)

    base = digest()
    assert digest(timeout=5, retry={"attempts": 3}, name="T", condition="1 == 1") == base
    assert digest(environment={"MODE": "fast"}) != base
    assert digest(args=["--x"]) != base
    assert digest(args=["${env.DAY}"], env={"DAY": "mon"}) != digest(
        args=["${env.DAY}"], env={"DAY": "tue"}
    )
    (tmp_path / "job.py").write_text("print(2)\n")  # the script's content is part of it
    assert digest() != base


def test_artifacts_of_a_reused_task_are_linked_and_its_paths_follow(tmp_path: Path):
    old, new = tmp_path / "artifacts" / "old", tmp_path / "artifacts" / "new"
    (old / "nb").mkdir(parents=True)
    (old / "nb" / "out.ipynb").write_text("{}")
    assert copy_artifacts(old, new, "nb") and (new / "nb" / "out.ipynb").read_text() == "{}"
    assert not copy_artifacts(old, new, "other")
    result = {"output": str(old / "nb" / "out.ipynb"), "n": 1, "elsewhere": "/tmp/x"}
    assert moved(result, old, new) == {"output": str(new / "nb" / "out.ipynb"), "n": 1,
                                       "elsewhere": "/tmp/x"}  # fmt: skip


def test_the_python_api_resumes_and_refuses(project: Path):
    (project / "wf.json").write_text(
        '{"name": "api", "tasks": [{"id": "a", "type": "shell", "command": "echo A"},'
        ' {"id": "b", "type": "shell", "command": "test -f go && echo B${tasks.a.result}",'
        ' "depends_on": ["a"]}]}'
    )
    orchestrator = WorkflowOrchestrator(project, kill_grace=2.0)
    first = orchestrator.execute(project / "wf.json", raise_on_failure=False)
    assert first.status is State.FAILED
    (project / "go").touch()
    second = orchestrator.execute(project / "wf.json", resume=first.id[:6])
    assert second.status is State.SUCCEEDED and second.resumed_from == first.id
    assert second.tasks["a"].reused == "resumed" and second.tasks["b"].result == "BA"
    other = make_workflow(shell("a"), name="another")
    with pytest.raises(ResumeRefused, match="not of 'another'"):
        orchestrator.execute(other, resume=first.id)
