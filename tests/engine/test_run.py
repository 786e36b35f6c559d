"""The engine against real processes: order, parallelism, skips, retries, timeouts, results."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest

from jupyter_workflows.engine import WorkflowOrchestrator
from jupyter_workflows.execution.states import State
from tests.conftest import make_workflow


def shell(task_id: str, command: str, **fields):
    return {"id": task_id, "type": "shell", "command": command, **fields}


def test_dependencies_run_in_order_and_results_flow(run_workflow):
    execution = run_workflow(
        make_workflow(
            shell("a", "echo '{\"n\": 41}'"),
            shell("b", "n=${tasks.a.result.n}; echo $((n + 1))", depends_on=["a"]),
            shell("c", "echo ${tasks.b.result}", depends_on="b"),
        )
    )
    assert execution.status is State.SUCCEEDED
    a, b, c = (execution.tasks[t] for t in "abc")
    assert a.result == {"n": 41} and b.result == 42 and c.result == 42
    assert a.ended_at <= b.started_at and b.ended_at <= c.started_at


def test_independent_tasks_overlap_up_to_max_parallel(run_workflow):
    tasks = [shell(f"t{i}", "sleep 0.3") for i in range(4)]
    started = time.monotonic()
    execution = run_workflow(make_workflow(*tasks), max_parallel=2)
    elapsed = time.monotonic() - started
    assert execution.status is State.SUCCEEDED
    spans = sorted((t.started_at, t.ended_at) for t in execution.tasks.values())
    # two at a time: the first two overlap, the third starts only after one of them ended
    assert spans[1][0] < spans[0][1]
    assert spans[2][0] >= min(spans[0][1], spans[1][1]) - 0.01
    assert 0.55 < elapsed < 2.0


def test_failure_skips_dependents_transitively_but_not_others(run_workflow):
    execution = run_workflow(
        make_workflow(
            shell("bad", "echo boom >&2; exit 4"),
            shell("child", "true", depends_on=["bad"]),
            shell("grandchild", "true", depends_on=["child"]),
            shell("independent", "true"),
        )
    )
    assert execution.status is State.FAILED
    assert execution.tasks["bad"].status is State.FAILED
    assert execution.tasks["bad"].exit_code == 4
    assert "boom" in execution.tasks["bad"].error
    assert execution.tasks["child"].status is State.SKIPPED
    assert execution.tasks["grandchild"].status is State.SKIPPED
    assert execution.tasks["independent"].status is State.SUCCEEDED


def test_false_condition_skips_only_that_task(run_workflow):
    execution = run_workflow(
        make_workflow(
            shell("gated", "true", condition="${env.DEPLOY} == 'true'"),
            shell("after", "echo ${tasks.gated.status}", depends_on=["gated"]),
        ),
        env={"DEPLOY": "false"},
    )
    assert execution.tasks["gated"].status is State.SKIPPED
    assert execution.tasks["after"].result == "skipped"
    assert execution.status is State.SUCCEEDED


def test_condition_on_upstream_exit_code(run_workflow):
    execution = run_workflow(
        make_workflow(
            shell("build", "exit 0"),
            shell(
                "deploy",
                "true",
                depends_on=["build"],
                condition="${env.DEPLOY_ENABLED} == 'true' && ${tasks.build.exit_code} == 0",
            ),
        ),  # fmt: skip
        env={"DEPLOY_ENABLED": "true"},
    )
    assert execution.tasks["deploy"].status is State.SUCCEEDED


def test_continue_on_error_keeps_run_and_dependents_going(run_workflow):
    execution = run_workflow(
        make_workflow(
            shell("optional", "exit 1", continue_on_error=True),
            shell("next", "true", depends_on=["optional"]),
        )
    )
    assert execution.tasks["optional"].status is State.FAILED
    assert execution.tasks["next"].status is State.SUCCEEDED
    assert execution.status is State.SUCCEEDED


def test_on_failure_handler_runs_only_when_needed(run_workflow, project):
    marker = project / "cleaned"
    execution = run_workflow(
        make_workflow(
            shell("work", "exit 2", on_failure="cleanup"),
            shell("fine", "true", on_failure="never"),
            shell("cleanup", f"touch {marker}"),
            shell("never", "exit 9"),
        )
    )
    assert marker.exists()
    assert execution.tasks["cleanup"].status is State.SUCCEEDED
    assert execution.tasks["never"].status is State.SKIPPED
    assert execution.status is State.FAILED


def test_retries_with_backoff_record_each_attempt(run_workflow, project):
    counter = project / "count"
    command = (
        f"n=$(cat {counter} 2>/dev/null || echo 0); n=$((n+1)); echo $n > {counter}; [ $n -ge 3 ]"
    )
    execution = run_workflow(
        make_workflow(shell("flaky", command, retry={"attempts": 4, "delay": 100, "backoff": 2}))
    )
    task = execution.tasks["flaky"]
    assert task.status is State.SUCCEEDED
    assert [a.status for a in task.attempts] == [State.FAILED, State.FAILED, State.SUCCEEDED]
    gap1 = task.attempts[1].started_at - task.attempts[0].ended_at
    gap2 = task.attempts[2].started_at - task.attempts[1].ended_at
    assert 0.09 < gap1 < 0.5 and 0.19 < gap2 < 0.7  # 100 ms, then 200 ms


def test_retries_exhausted_fail_with_last_error(run_workflow):
    execution = run_workflow(
        make_workflow(shell("nope", "exit 7", retry={"attempts": 3, "delay": "1ms"}))
    )
    task = execution.tasks["nope"]
    assert task.status is State.FAILED and task.exit_code == 7 and len(task.attempts) == 3


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_timeout_kills_the_whole_process_tree_promptly(run_workflow, project):
    pidfile = project / "grandchild.pid"
    # The grandchild keeps stdout open; the run must still end promptly and the pid be gone.
    command = f"sleep 60 & echo $! > {pidfile}; sleep 60"
    started = time.monotonic()
    execution = run_workflow(make_workflow(shell("slow", command, timeout="500ms")), kill_grace=1.0)
    elapsed = time.monotonic() - started
    task = execution.tasks["slow"]
    assert task.status is State.TIMED_OUT
    assert "timed out after 500ms" in task.error
    assert elapsed < 3.0
    grandchild = int(pidfile.read_text())
    assert not _alive(grandchild)


def test_timeout_escalates_to_sigkill_when_sigterm_is_ignored(run_workflow, project):
    command = "trap '' TERM; sleep 30"
    started = time.monotonic()
    execution = run_workflow(make_workflow(shell("stubborn", command, timeout=0.3)), kill_grace=0.5)
    assert execution.tasks["stubborn"].status is State.TIMED_OUT
    assert time.monotonic() - started < 3.0


def test_background_leftovers_are_stopped_when_the_task_ends(run_workflow, project):
    pidfile = project / "bg.pid"
    execution = run_workflow(make_workflow(shell("bg", f"sleep 60 & echo $! > {pidfile}")))
    assert execution.tasks["bg"].status is State.SUCCEEDED
    assert not _alive(int(pidfile.read_text()))


def test_outputs_file_and_multiline_values(run_workflow):
    command = (
        "echo version=1.2.3 >> $WORKFLOW_OUTPUT; "
        "printf 'notes<<EOF\\nline one\\nline two\\nEOF\\n' >> $WORKFLOW_OUTPUT"
    )
    execution = run_workflow(
        make_workflow(
            shell("produce", command),
            shell("consume", "echo v${tasks.produce.outputs.version}", depends_on=["produce"]),
        )
    )
    assert execution.tasks["produce"].outputs == {"version": "1.2.3", "notes": "line one\nline two"}
    assert execution.tasks["consume"].result == "v1.2.3"


def test_result_is_trimmed_text_or_parsed_json(run_workflow):
    execution = run_workflow(
        make_workflow(shell("text", "echo '  hello  '; echo"), shell("json", "echo '[1, \"a\"]'"))
    )
    assert execution.tasks["text"].result == "hello"
    assert execution.tasks["json"].result == [1, "a"]


@pytest.mark.parametrize(
    "value",
    ['"; touch {m}; echo "', "$(touch {m})", "`touch {m}`", "' ; touch {m} ; '", "a\nb; touch {m}"],
)
def test_injected_values_stay_data_end_to_end(run_workflow, project, value):
    marker = project / "pwned"
    value = value.format(m=marker)
    execution = run_workflow(
        make_workflow(
            shell("plain", "echo ${env.X}"),
            shell("single", "echo '${env.X}'"),
            shell("double", 'echo "${env.X}"'),
        ),
        env={"X": value},
    )
    assert not marker.exists()
    for task_id in ("plain", "single", "double"):
        # the raw output lines: the result would be parsed when the value happens to be JSON
        assert execution.tasks[task_id].log_tail == value.split("\n")


def test_a_type_whose_implementation_cannot_be_imported_fails_clearly(run_workflow, monkeypatch):
    # A declared type whose implementation (or a library it needs) is not installed: the
    # task fails saying so, and is not retried; the rest of the run goes on.
    from jupyter_workflows.tasks import registry
    from jupyter_workflows.tasks.docker import DockerType

    monkeypatch.setattr(DockerType, "implementation", "jupyter_workflows.tasks.not_written:D")
    monkeypatch.delitem(registry._instances, "docker", raising=False)
    execution = run_workflow(
        make_workflow(
            {"id": "ping", "type": "docker", "image": "x", "retry": {"attempts": 3}},
            shell("ok", "true"),
        )
    )
    task = execution.tasks["ping"]
    assert task.status is State.FAILED
    assert "task type 'docker' cannot run here" in task.error
    assert "No module named 'jupyter_workflows.tasks.not_written'" in task.error
    assert len(task.attempts) == 1
    assert execution.tasks["ok"].status is State.SUCCEEDED


def test_unresolvable_reference_fails_the_task_with_its_name(run_workflow):
    execution = run_workflow(
        make_workflow(
            shell("a", "true"), shell("b", "echo ${tasks.a.outputs.missing}", depends_on=["a"])
        )
    )
    task = execution.tasks["b"]
    assert task.status is State.FAILED and "missing" in task.error


def test_task_environment_cwd_and_relative_paths(run_workflow, project):
    (project / "sub").mkdir()
    (project / "scripts").mkdir()
    (project / "scripts" / "show.py").write_text(
        "import os, sys; print(os.getcwd(), os.environ['GREETING'], sys.argv[1])"
    )
    execution = run_workflow(
        make_workflow(
            {
                "id": "py",
                "type": "python",
                "script": "scripts/show.py",
                "args": ["${env.ARG}"],
                "cwd": "sub",
                "environment": {"GREETING": "hi"},
            },
        ),  # fmt: skip
        env={"ARG": "x y"},
    )
    assert execution.tasks["py"].result == f"{project / 'sub'} hi x y"


def test_the_project_root_is_in_templates_and_the_environment(run_workflow, project):
    execution = run_workflow(
        make_workflow(shell("a", 'echo ${env.WORKFLOW_PROJECT_ROOT} "$WORKFLOW_PROJECT_ROOT"'))
    )
    assert execution.tasks["a"].result == f"{project} {project}"


def test_defaults_apply_to_every_task(run_workflow):
    execution = run_workflow(
        make_workflow(
            shell("a", "echo $REGION"),
            shell("b", "sleep 5"),
            defaults={"environment": {"REGION": "eu"}, "timeout": "300ms"},
        )
    )
    assert execution.tasks["a"].result == "eu"
    assert execution.tasks["b"].status is State.TIMED_OUT


def test_cancelling_a_run_stops_tasks_and_records_cancelled(project):
    orchestrator = WorkflowOrchestrator(project, kill_grace=1.0)

    async def main():
        job = asyncio.ensure_future(
            orchestrator.execute_async(
                make_workflow(shell("long", "sleep 30"), shell("next", "true", depends_on=["long"]))
            )
        )
        await asyncio.sleep(0.5)
        job.cancel()
        with pytest.raises(asyncio.CancelledError):
            await job

    started = time.monotonic()
    asyncio.run(main())
    assert time.monotonic() - started < 4
    [summary] = orchestrator.store.history()
    execution = orchestrator.store.get_execution(summary.id)
    assert execution.status is State.CANCELLED
    assert execution.tasks["long"].status is State.CANCELLED
    assert execution.tasks["next"].status is State.CANCELLED


def test_sync_facade_works_inside_a_running_event_loop(project):
    orchestrator = WorkflowOrchestrator(project, record=False)

    async def inside_a_kernel():
        return orchestrator.execute(make_workflow(shell("a", "echo in-loop")))

    execution = asyncio.run(inside_a_kernel())
    assert execution.tasks["a"].result == "in-loop"


def test_runs_are_recorded_in_the_store(project, run_workflow):
    execution = run_workflow(make_workflow(shell("a", "echo one; echo two")))
    store = WorkflowOrchestrator(project).store
    stored = store.get_execution(execution.id, logs=10)
    assert stored.status is State.SUCCEEDED
    assert stored.tasks["a"].log_tail == ["one", "two"]
    assert Path(store.path).is_relative_to(project)


def test_tasks_see_the_runner_interpreter_first_on_path(run_workflow):
    import sys

    execution = run_workflow(make_workflow(shell("which", "command -v python")))
    assert os.path.dirname(execution.tasks["which"].result) == os.path.dirname(sys.executable)


def test_a_non_retryable_failure_is_not_retried(project):
    from jupyter_workflows.tasks.base import TaskResult, TaskType
    from jupyter_workflows.tasks.registry import _instances, register

    class Refusing(TaskType):
        name = "shell"
        calls = 0

        async def run(self, task, ctx):
            Refusing.calls += 1
            return TaskResult(status=State.FAILED, exit_code=None, error="4xx", retryable=False)

        async def after_run(self):
            Refusing.released = True

    saved = _instances.pop("shell", None)
    register("shell", Refusing())
    try:
        orchestrator = WorkflowOrchestrator(project, record=False)
        execution = orchestrator.execute(
            make_workflow(shell("once", "true", retry={"attempts": 5, "delay": "1ms"})),
            raise_on_failure=False,
        )
    finally:
        _instances.pop("shell")
        if saved is not None:
            _instances["shell"] = saved
    assert Refusing.calls == 1
    assert len(execution.tasks["once"].attempts) == 1
    assert Refusing.released  # after_run told the type the run ended
