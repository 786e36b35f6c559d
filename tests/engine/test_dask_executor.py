"""The dask executor against a real cluster: a ``dask scheduler`` and two ``dask worker``
processes on 127.0.0.1 (tests/dask_cluster.py), driven through the real ``workflow`` command
where a user would use it, and through the Python API where the test must act mid-run."""

from __future__ import annotations

import json
import os
import signal
import socket
import textwrap
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from jupyter_workflows.engine import WorkflowOrchestrator
from jupyter_workflows.execution.events import AttemptPlaced, OutputLine, TaskEnded
from jupyter_workflows.execution.processes import is_zombie
from jupyter_workflows.execution.states import State
from tests.conftest import cli, make_workflow, write_workflow
from tests.dask_cluster import Cluster, dask_cluster_fixture  # noqa: F401  (the fixture)

pytest.importorskip("distributed")


def _run_json(result: Any) -> dict[str, Any]:
    assert result.returncode in (0, 1), result.stderr
    execution: dict[str, Any] = json.loads(result.stdout[result.stdout.index("{") :])
    return execution


def _tasks(execution: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {task["id"]: task for task in execution["tasks"]}


def _processes_with(marker: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if marker in (entry / "cmdline").read_bytes().decode(errors="replace"):
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def test_tasks_spread_over_the_workers_and_each_attempt_says_where(
    project: Path, dask_cluster: Cluster
) -> None:
    tasks = [{"id": f"t{i}", "type": "shell", "command": "sleep 0.3; echo $$"} for i in range(20)]
    path = write_workflow(project, {"name": "spread", "tasks": tasks})
    ran = cli(project, "run", str(path), "--cluster", dask_cluster.address, "--json",
              "--max-parallel", "4")  # fmt: skip
    execution = _run_json(ran)
    assert execution["status"] == "succeeded", ran.stderr
    attempts = [a for task in execution["tasks"] for a in task["attempts"]]
    assert len(attempts) == 20
    assert {a["executor"] for a in attempts} == {"dask"}
    assert {a["host"] for a in attempts} == {socket.gethostname()}
    assert {a["worker"] for a in attempts} == set(dask_cluster.workers())  # both did work
    # The store recorded the same: `workflow status` reads it back from the index.
    status = cli(project, "status", execution["id"], "--json")
    stored = json.loads(status.stdout)
    assert (stored["executor"], stored["cluster"]) == ("dask", dask_cluster.address)
    assert {
        task["id"]: [(a["executor"], a["worker"], a["host"]) for a in task["attempts"]]
        for task in stored["tasks"]
    } == {
        task["id"]: [(a["executor"], a["worker"], a["host"]) for a in task["attempts"]]
        for task in execution["tasks"]
    }
    table = cli(project, "status", execution["id"]).stdout
    assert f"tasks run on dask at {dask_cluster.address}" in table
    assert all(worker in table for worker in dask_cluster.workers())  # the 'where' column


def test_output_lines_arrive_while_the_task_runs(project: Path, dask_cluster: Cluster) -> None:
    arrived: list[tuple[float, Any]] = []
    orchestrator = WorkflowOrchestrator(
        project, cluster=dask_cluster.address, sinks=[lambda e: arrived.append((time.time(), e))]
    )
    workflow = make_workflow(
        {"id": "talk", "type": "shell", "command": "echo first; sleep 2; echo second"}
    )
    execution = orchestrator.execute(workflow)
    assert execution.status is State.SUCCEEDED
    first = next(at for at, e in arrived if isinstance(e, OutputLine) and e.line == "first")
    ended = next(at for at, e in arrived if isinstance(e, TaskEnded) and e.task_id == "talk")
    assert ended - first > 1.5  # it came while the task slept, not with its end


def test_attempts_running_together_keep_their_lines_apart(
    project: Path, dask_cluster: Cluster
) -> None:
    lines: list[OutputLine] = []
    orchestrator = WorkflowOrchestrator(
        project,
        cluster=dask_cluster.address,
        sinks=[lambda e: lines.append(e) if isinstance(e, OutputLine) else None],
    )
    command = "for n in 1 2 3; do echo {id}-$n; sleep 0.1; done"
    tasks = [{"id": f"t{i}", "type": "shell", "command": command.format(id=f"t{i}")}
             for i in range(6)]  # fmt: skip
    execution = orchestrator.execute(make_workflow(*tasks), max_parallel=4)
    assert execution.status is State.SUCCEEDED
    assert sorted((e.task_id, e.line) for e in lines) == sorted(
        (f"t{i}", f"t{i}-{n}") for i in range(6) for n in (1, 2, 3)
    )


def test_values_from_upstream_tasks_and_the_environment_reach_the_worker(
    project: Path, dask_cluster: Cluster
) -> None:
    filler = [{"id": f"f{i}", "type": "shell", "command": "true"} for i in range(5)]
    workflow = make_workflow(
        *filler,
        {"id": "a", "type": "shell", "command": 'echo "k=from-a" >> "$WORKFLOW_OUTPUT"; echo 7'},
        {"id": "b", "type": "shell", "depends_on": ["a", "f0"],
         "environment": {"FROM_A": "${tasks.a.outputs.k}"},
         "command": 'echo "${tasks.a.result} $FROM_A $RUN_VALUE ${env.RUN_VALUE} '
                    '${tasks.f0.status} $WORKFLOW_TASK_ID"'},
    )  # fmt: skip
    orchestrator = WorkflowOrchestrator(project, cluster=dask_cluster.address)
    execution = orchestrator.execute(workflow, env={"RUN_VALUE": "v"})
    assert execution.status is State.SUCCEEDED, execution.error
    assert execution.tasks["a"].outputs == {"k": "from-a"}
    assert execution.tasks["b"].result == "7 from-a v v succeeded b"


def test_a_timed_out_task_leaves_no_process_on_the_worker(
    project: Path, dask_cluster: Cluster
) -> None:
    marker = f"301.{uuid.uuid4().int % 10**8}"  # a sleep this long is this test's own
    path = write_workflow(
        project,
        {"name": "slow", "tasks": [{"id": "nap", "type": "shell",
                                    "command": f"sleep {marker}; true", "timeout": "1s"}]},
    )  # fmt: skip
    execution = _run_json(cli(project, "run", str(path), "--cluster", dask_cluster.address,
                              "--json"))  # fmt: skip
    nap = _tasks(execution)["nap"]
    assert nap["status"] == "timed_out"
    assert nap["attempts"][0]["worker"] in dask_cluster.workers()
    deadline = time.monotonic() + 10
    while _processes_with(marker) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _processes_with(marker) == []


def test_a_lost_worker_is_retried_elsewhere_and_finished_tasks_are_not_rerun(
    project: Path, dask_cluster: Cluster
) -> None:
    counter = project / "first-ran"
    marker = f"302.{uuid.uuid4().int % 10**8}"
    workflow = make_workflow(
        {"id": "first", "type": "shell", "command": f"echo x >> {counter}"},
        {"id": "long", "type": "shell", "depends_on": ["first"],
         "command": f"echo started; sleep 4 || sleep {marker}; echo done"},
    )  # fmt: skip
    placed: list[str] = []
    killed: list[int] = []

    def sink(event: Any) -> None:
        if isinstance(event, AttemptPlaced) and event.task_id == "long" and not placed:
            placed.append(event.worker or "")

    orchestrator = WorkflowOrchestrator(project, cluster=dask_cluster.address, sinks=[sink])
    outcome: dict[str, Any] = {}
    runner = threading.Thread(
        target=lambda: outcome.update(run=orchestrator.execute(workflow, raise_on_failure=False))
    )
    runner.start()
    deadline = time.monotonic() + 60
    while not placed and time.monotonic() < deadline:
        time.sleep(0.05)
    assert placed, "the long task never started"
    time.sleep(0.5)  # well inside its 4 s
    pid = dask_cluster.workers()[placed[0]]["pid"]
    assert isinstance(pid, int)
    lost_attempt = _processes_with(marker)  # the shell running on the worker about to die
    assert lost_attempt
    os.kill(pid, signal.SIGKILL)
    killed.append(pid)
    time.sleep(1.0)
    orphans = [p for p in lost_attempt if Path(f"/proc/{p}").exists() and not is_zombie(p)]
    runner.join(timeout=120)
    execution = outcome["run"]
    long = execution.tasks["long"]
    assert execution.status is State.SUCCEEDED, (execution.error, long.error)
    assert [a.status for a in long.attempts] == [State.CRASHED, State.SUCCEEDED]
    assert long.attempts[0].worker == placed[0]
    assert placed[0] in (long.attempts[0].error or "")
    assert long.attempts[1].worker != placed[0]
    assert counter.read_text() == "x\n"  # the finished task did not run again
    assert orphans == []  # the dead worker's task processes died with it
    dask_cluster.wait_for_workers(2)  # the nanny brings the worker back for the next tests


def test_a_notebook_task_runs_on_a_worker(project: Path, dask_cluster: Cluster) -> None:
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook

    notebook = new_notebook(cells=[
        new_code_cell("rows = 3", metadata={"tags": ["parameters"]}),
        new_code_cell("import os, jupyter_workflows as jw\njw.record('rows', rows * 2)"),
    ])  # fmt: skip
    nbformat.write(notebook, project / "count.ipynb")
    path = write_workflow(
        project,
        {"name": "nb", "tasks": [{"id": "count", "type": "notebook", "notebook": "count.ipynb",
                                  "parameters": {"rows": 5}}]},
    )  # fmt: skip
    execution = _run_json(cli(project, "run", str(path), "--cluster", dask_cluster.address,
                              "--json", timeout=240))  # fmt: skip
    count = _tasks(execution)["count"]
    assert count["status"] == "succeeded", count["error"]
    assert count["outputs"] == {"rows": 10}
    assert count["attempts"][0]["worker"] in dask_cluster.workers()
    assert Path(count["result"]["output"]).is_file()  # the executed notebook, where a run keeps it


def test_resources_pin_tasks_to_the_worker_that_declares_them(
    project: Path, dask_cluster: Cluster
) -> None:
    gpu = next(a for a, w in dask_cluster.workers().items() if w["resources"].get("GPU"))
    tasks = [{"id": f"g{i}", "type": "shell", "command": "sleep 0.2", "resources": {"GPU": 1}}
             for i in range(4)]  # fmt: skip
    path = write_workflow(project, {"name": "gpu", "tasks": tasks})
    execution = _run_json(cli(project, "run", str(path), "--cluster", dask_cluster.address,
                              "--json", "--max-parallel", "4"))  # fmt: skip
    assert execution["status"] == "succeeded"
    assert {t["attempts"][0]["worker"] for t in execution["tasks"]} == {gpu}


def test_resources_no_worker_has_are_refused_at_start(project: Path, dask_cluster: Cluster) -> None:
    marker = project / "ran"
    path = write_workflow(project, {"name": "tpu", "tasks": [
        {"id": "train", "type": "shell", "command": f"touch {marker}", "resources": {"TPU": 1}},
    ]})  # fmt: skip
    started = time.monotonic()
    ran = cli(project, "run", str(path), "--cluster", dask_cluster.address, "--json")
    execution = _run_json(ran)
    assert time.monotonic() - started < 30
    assert execution["status"] == "crashed"
    assert "task 'train' needs resources {'TPU': 1.0}, which no worker has" in execution["error"]
    assert not marker.exists()


def test_a_local_cluster_is_started_for_the_run_without_an_address(
    project: Path, tmp_path: Path
) -> None:
    path = write_workflow(project, {"name": "lc", "tasks": [
        {"id": "a", "type": "shell", "command": 'echo "k=v" >> "$WORKFLOW_OUTPUT"; echo $$'},
        {"id": "b", "type": "python", "code": "print('b')", "depends_on": ["a"]},
    ]})  # fmt: skip
    temp = tmp_path / "temp"  # the workers' temporary folder
    temp.mkdir()
    ran = cli(project, "run", str(path), "--executor", "dask", timeout=180,
              env={"TMPDIR": str(temp)})  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    assert "tasks run on dask at tcp://127.0.0.1:" in ran.stdout
    assert "dashboard: http://" in ran.stdout
    # the workers' folder for $WORKFLOW_OUTPUT files: one per user, left empty
    folders = [folder.name for folder in temp.glob("jupyter-workflows-*")]
    assert folders == [f"jupyter-workflows-outputs-{os.getuid()}"]
    assert list(temp.glob("jupyter-workflows-*/*")) == []


def test_an_unreachable_scheduler_is_one_clear_line(project: Path) -> None:
    path = write_workflow(project, {"name": "x", "tasks": [
        {"id": "a", "type": "shell", "command": "true"}]})  # fmt: skip
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    ran = cli(project, "run", str(path), "--cluster", f"tcp://127.0.0.1:{port}", "--json",
              timeout=120)  # fmt: skip
    execution = _run_json(ran)
    assert execution["status"] == "crashed"
    assert f"cannot connect to the Dask scheduler at tcp://127.0.0.1:{port}" in execution["error"]
    assert "Traceback" not in ran.stderr


def test_the_workflow_file_format_checks_resources(tmp_path: Path) -> None:
    from jupyter_workflows.definition.loader import validate_text

    report = validate_text(textwrap.dedent("""\
        name: x
        tasks:
          - id: a
            type: shell
            command: "true"
            resources: {GPU: 0}
        """), fmt="yaml")  # fmt: skip
    assert [(p.line, p.field) for p in report.problems] == [(6, "resources.GPU")]


def test_with_no_worker_left_the_run_ends_crashed_saying_so(project: Path) -> None:
    from tests.dask_cluster import running_cluster

    # One worker and no nanny: once it is killed, nothing will take its place.
    with running_cluster([["--name", "only", "--no-nanny"]]) as cluster:
        placed: list[str] = []
        workflow = make_workflow(
            {"id": "long", "type": "shell", "command": "sleep 30", "timeout": "5m"}
        )
        orchestrator = WorkflowOrchestrator(
            project,
            cluster=cluster.address,
            sinks=[lambda e: placed.append(e.worker) if isinstance(e, AttemptPlaced) else None],
        )
        outcome: dict[str, Any] = {}
        runner = threading.Thread(
            target=lambda: outcome.update(
                run=orchestrator.execute(workflow, raise_on_failure=False)
            )
        )
        runner.start()
        deadline = time.monotonic() + 60
        while not placed and time.monotonic() < deadline:
            time.sleep(0.05)
        assert placed
        pid = cluster.workers()[placed[0]]["pid"]
        assert isinstance(pid, int)
        killed_at = time.monotonic()
        os.kill(pid, signal.SIGKILL)
        runner.join(timeout=120)
        took = time.monotonic() - killed_at
    execution = outcome["run"]
    assert execution.status is State.CRASHED
    assert took < 40  # not the task's 5 minutes
    long = execution.tasks["long"]
    assert [a.status for a in long.attempts] == [State.CRASHED]
    assert long.error == f"worker {placed[0]} was lost and no worker is left in {cluster.address}"
