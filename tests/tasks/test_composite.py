"""conditional, parallel and loop: children are real tasks, recorded under their parent."""

from __future__ import annotations

import time
from pathlib import Path

from jupyter_workflows.engine import WorkflowOrchestrator
from jupyter_workflows.execution.states import State
from tests.conftest import make_workflow


def sh(command: str, **fields):
    return {"type": "shell", "command": command, **fields}


# -- conditional -------------------------------------------------------------------------------


def test_conditional_runs_then_and_records_else_as_skipped(run_workflow):
    deploy = {
        "id": "conditional-deploy",
        "type": "conditional",
        "condition": "${env.DEPLOY_ENABLED} == 'true'",
        "then": sh("echo deploying"),
        "else": sh("echo 'Deployment skipped'"),
    }
    execution = run_workflow(make_workflow(deploy), env={"DEPLOY_ENABLED": "true"})
    tasks = execution.tasks
    assert tasks["conditional-deploy"].status is State.SUCCEEDED
    assert tasks["conditional-deploy"].result == "deploying"
    assert tasks["conditional-deploy"].outputs["branch"] == "then"
    assert tasks["conditional-deploy.then"].status is State.SUCCEEDED
    assert tasks["conditional-deploy.then"].parent == "conditional-deploy"
    assert tasks["conditional-deploy.else"].status is State.SKIPPED


def test_a_false_condition_takes_else_and_does_not_skip_the_task(run_workflow):
    deploy = {
        "id": "d",
        "type": "conditional",
        "condition": "${env.DEPLOY_ENABLED} == 'true'",
        "then": sh("echo yes"),
        "else": sh("echo no"),
    }
    execution = run_workflow(make_workflow(deploy), env={"DEPLOY_ENABLED": "false"})
    assert execution.tasks["d"].status is State.SUCCEEDED
    assert execution.tasks["d"].result == "no"
    assert execution.tasks["d.then"].status is State.SKIPPED


def test_a_false_condition_without_else_succeeds_with_nothing_run(run_workflow):
    task = {"id": "d", "type": "conditional", "condition": "1 == 2", "then": sh("exit 1")}
    execution = run_workflow(make_workflow(task))
    assert execution.tasks["d"].status is State.SUCCEEDED
    assert execution.tasks["d.then"].status is State.SKIPPED


def test_a_failing_branch_fails_the_conditional_and_skips_its_dependents(run_workflow):
    execution = run_workflow(
        make_workflow(
            {"id": "d", "type": "conditional", "condition": "true", "then": sh("exit 4")},
            {"id": "after", **sh("true"), "depends_on": ["d"]},
        )
    )
    assert execution.tasks["d"].status is State.FAILED
    assert execution.tasks["d"].exit_code == 4
    assert "'then' branch failed" in execution.tasks["d"].error
    assert execution.tasks["after"].status is State.SKIPPED


# -- parallel ----------------------------------------------------------------------------------


def test_parallel_children_overlap_and_results_are_collected(run_workflow):
    group = {
        "id": "parallel-tests",
        "type": "parallel",
        "tasks": [
            {"id": "unit-tests", **sh("sleep 0.3; echo unit")},
            {"id": "integration-tests", **sh("sleep 0.3; echo integration")},
        ],
    }
    started = time.monotonic()
    execution = run_workflow(make_workflow(group), max_parallel=4)
    assert time.monotonic() - started < 1.5
    tasks = execution.tasks
    assert tasks["parallel-tests"].result == {
        "unit-tests": "unit",
        "integration-tests": "integration",
    }
    unit, integration = tasks["unit-tests"], tasks["integration-tests"]
    assert unit.parent == integration.parent == "parallel-tests"
    assert unit.started_at < integration.ended_at and integration.started_at < unit.ended_at


def test_a_parallel_group_does_not_deadlock_at_max_parallel_one(run_workflow):
    group = {
        "id": "g",
        "type": "parallel",
        "tasks": [{"id": "a", **sh("true")}, {"id": "b", **sh("true")}],
    }
    execution = run_workflow(make_workflow(group), max_parallel=1)
    assert execution.status is State.SUCCEEDED


def test_a_failing_child_fails_the_group_after_all_ran(run_workflow):
    group = {
        "id": "g",
        "type": "parallel",
        "tasks": [{"id": "bad", **sh("exit 2")}, {"id": "good", **sh("sleep 0.2; echo ok")}],
    }
    execution = run_workflow(make_workflow(group))
    assert execution.tasks["g"].status is State.FAILED
    assert "1 of 2 failed: bad" in execution.tasks["g"].error
    assert execution.tasks["good"].status is State.SUCCEEDED


def test_wait_for_any_takes_the_first_success_and_cancels_the_rest(run_workflow, project):
    pidfile = project / "slow.pid"
    group = {
        "id": "race",
        "type": "parallel",
        "wait_for": "any",
        "tasks": [
            {"id": "slow", **sh(f"echo $$ > {pidfile}; sleep 30")},
            {"id": "fast", **sh("sleep 0.3; echo fast")},
        ],
    }
    started = time.monotonic()
    execution = run_workflow(make_workflow(group), kill_grace=1.0)
    assert time.monotonic() - started < 5
    assert execution.tasks["race"].status is State.SUCCEEDED
    assert execution.tasks["race"].result == {"fast": "fast"}
    assert execution.tasks["slow"].status is State.CANCELLED
    pid = int(pidfile.read_text())
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        state = "gone"
    assert state in ("gone", "Z")


def test_children_get_retries_and_timeouts(run_workflow, project):
    counter = project / "n"
    flaky = f"n=$(cat {counter} 2>/dev/null || echo 0); echo $((n+1)) > {counter}; [ $n -ge 1 ]"
    group = {
        "id": "g",
        "type": "parallel",
        "tasks": [
            {"id": "flaky", **sh(flaky), "retry": {"attempts": 3, "delay": "10ms"}},
            {"id": "slow", **sh("sleep 30"), "timeout": "300ms"},
        ],
    }
    execution = run_workflow(make_workflow(group), kill_grace=1.0)
    assert execution.tasks["flaky"].status is State.SUCCEEDED
    assert len(execution.tasks["flaky"].attempts) == 2
    assert execution.tasks["slow"].status is State.TIMED_OUT


# -- loop --------------------------------------------------------------------------------------


def test_loop_over_items_named_env_still_reaches_the_environment(run_workflow):
    loop = {
        "id": "deploy-environments",
        "type": "loop",
        "items": ["staging", "production"],
        "item": "env",
        "then": sh("echo ${env}:${env.REGION}"),
    }
    execution = run_workflow(make_workflow(loop), env={"REGION": "eu"})
    tasks = execution.tasks
    assert tasks["deploy-environments"].result == ["staging:eu", "production:eu"]
    assert tasks["deploy-environments[0]"].parent == "deploy-environments"
    assert "env=staging" in tasks["deploy-environments[0]"].name
    assert "env=production" in tasks["deploy-environments[1]"].name
    first, second = tasks["deploy-environments[0]"], tasks["deploy-environments[1]"]
    assert first.ended_at <= second.started_at  # max_parallel 1: in order


def test_loop_items_from_an_upstream_result_and_object_items(run_workflow):
    execution = run_workflow(
        make_workflow(
            {"id": "list", **sh("""echo '[{"n": "a"}, {"n": "b"}]'""")},
            {
                "id": "each",
                "type": "loop",
                "items": "${tasks.list.result}",
                "then": sh("echo ${item.n}${loop_index}"),
                "depends_on": ["list"],
            },
        )
    )
    assert execution.tasks["each"].result == ["a0", "b1"]


def test_stop_on_failure_skips_the_remaining_iterations(run_workflow):
    loop = {
        "id": "l",
        "type": "loop",
        "items": [1, 2, 3],
        "stop_on_failure": True,
        "then": sh("[ ${item} -ne 2 ]"),
    }
    execution = run_workflow(make_workflow(loop))
    tasks = execution.tasks
    assert tasks["l[0]"].status is State.SUCCEEDED
    assert tasks["l[1]"].status is State.FAILED
    assert tasks["l[2]"].status is State.SKIPPED
    assert tasks["l"].status is State.FAILED and "[1]" in tasks["l"].error


def test_without_stop_on_failure_every_iteration_runs(run_workflow):
    loop = {"id": "l", "type": "loop", "items": [1, 2, 3], "then": sh("[ ${item} -ne 2 ]")}
    execution = run_workflow(make_workflow(loop))
    assert execution.tasks["l[2]"].status is State.SUCCEEDED
    assert execution.tasks["l"].outputs == {"iterations": 3, "failed": 1}


def _max_overlap(records) -> int:
    """How many of these tasks ran at the same moment, at most (from their timestamps)."""
    edges = sorted([(r.started_at, 1) for r in records] + [(r.ended_at, -1) for r in records])
    running = peak = 0
    for _, step in edges:  # at equal times an end (-1) sorts before a start (+1)
        running += step
        peak = max(peak, running)
    return peak


def test_loop_max_parallel_runs_iterations_together(run_workflow):
    loop = {
        "id": "l",
        "type": "loop",
        "items": [1, 2, 3, 4],
        "max_parallel": 2,
        "then": sh("sleep 0.3"),
    }
    execution = run_workflow(make_workflow(loop), max_parallel=4)
    assert execution.status is State.SUCCEEDED
    iterations = [execution.tasks[f"l[{i}]"] for i in range(4)]
    assert _max_overlap(iterations) == 2  # two at a time: never one, never more


def test_items_that_are_not_a_list_fail_clearly(run_workflow):
    loop = {"id": "l", "type": "loop", "items": "${env.NOT_A_LIST}", "then": sh("true")}
    execution = run_workflow(make_workflow(loop), env={"NOT_A_LIST": "plain words"})
    assert execution.tasks["l"].status is State.FAILED
    assert "loop items must be a list" in execution.tasks["l"].error


def test_nested_composites_and_the_store_keeps_the_tree(project):
    loop = {
        "id": "outer",
        "type": "loop",
        "items": ["x", "y"],
        "then": {
            "type": "conditional",
            "condition": "${item} == 'x'",
            "then": sh("echo picked ${item}"),
            "else": sh("echo other ${item}"),
        },
    }
    orchestrator = WorkflowOrchestrator(project)
    execution = orchestrator.execute(make_workflow(loop))
    assert execution.tasks["outer"].result == ["picked x", "other y"]
    stored = orchestrator.store.get_execution(execution.id)
    assert stored.tasks["outer[0]"].parent == "outer"
    assert stored.tasks["outer[0].then"].parent == "outer[0]"
    assert stored.tasks["outer[1].then"].status is State.SKIPPED
    assert stored.tasks["outer[1].else"].result == "other y"
