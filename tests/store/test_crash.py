"""Crash detection against real runner processes killed with SIGKILL."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator

import pytest

from jupyter_workflows.execution.states import State
from jupyter_workflows.store import ExecutionStore, read_journal

from .helpers import T0, run_events, write_events

RUNNER = """
import sys, time
from pathlib import Path
from jupyter_workflows.execution.events import (
    AttemptPlaced, AttemptStarted, OutputLine, RunStarted, TaskStarted,
)
from jupyter_workflows.store.journal import JournalWriter
from jupyter_workflows.execution.owner import current_owner

path, eid = Path(sys.argv[1]), sys.argv[2]
pid, host, pid_start = current_owner()
write = JournalWriter(path)
write(RunStarted(execution_id=eid, workflow="wf", pid=pid, host=host, pid_start=pid_start,
                 tasks=[{"id": "a"}, {"id": "b"}, {"id": "c"}], executor="dask",
                 cluster="tcp://10.0.0.5:8786", dashboard="http://10.0.0.5:8787/status"))
for task_id in ("a", "b"):
    write(TaskStarted(execution_id=eid, task_id=task_id))
    write(AttemptStarted(execution_id=eid, task_id=task_id, attempt=1))
write(AttemptPlaced(execution_id=eid, task_id="a", attempt=1, executor="dask",
                    worker="tcp://10.0.0.7:40123", host="node-7"))
write(OutputLine(execution_id=eid, task_id="a", attempt=1, stream="stdout", line="working"))
print("ready", flush=True)
time.sleep(120)
"""


@pytest.fixture
def runner(store: ExecutionStore) -> Iterator[subprocess.Popen[str]]:
    """A real runner process that journals a started run, then waits to be killed."""
    child = subprocess.Popen(
        [sys.executable, "-c", RUNNER, str(store.journal_path("run-1")), "run-1"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None and child.stdout.readline().strip() == "ready"
    yield child
    if child.poll() is None:
        child.kill()
    child.wait()


def test_a_live_owner_stays_running(store: ExecutionStore, runner: subprocess.Popen[str]) -> None:
    store.refresh()
    execution = store.get_execution("run-1")
    assert execution.status is State.RUNNING
    assert execution.pid == runner.pid
    assert [execution.task(t).status for t in "abc"] == [State.RUNNING] * 2 + [State.PENDING]


def test_a_killed_runner_is_marked_crashed(
    store: ExecutionStore, runner: subprocess.Popen[str]
) -> None:
    store.refresh()
    os.kill(runner.pid, signal.SIGKILL)
    runner.wait()
    store.refresh()
    execution = store.get_execution("run-1")
    assert execution.status is State.CRASHED
    assert execution.error is not None and "died" in execution.error
    assert str(runner.pid) in execution.error
    a, b, c = (execution.task(t) for t in "abc")
    assert (a.status, b.status, c.status) == (State.CRASHED, State.CRASHED, State.PENDING)
    assert a.attempts[0].status is State.CRASHED
    assert a.ended_at is not None and a.ended_at >= a.started_at  # type: ignore[operator]
    assert [line.line for line in store.logs("run-1")] == ["working"]
    # Where it ran survives the crash ending.
    assert (execution.executor, execution.cluster) == ("dask", "tcp://10.0.0.5:8786")
    placed = a.attempts[0]
    assert (placed.executor, placed.worker, placed.host) == (
        "dask",
        "tcp://10.0.0.7:40123",
        "node-7",
    )
    assert b.attempts[0].worker is None
    # The journal, the source of truth, carries the verdict; a second refresh adds nothing.
    path = store.journal_location("run-1")
    assert path is not None and path.parent.name == "done"  # complete now: archived
    kinds = [d["kind"] for d in read_journal(path)]
    assert kinds[-1] == "run_ended" and kinds.count("task_ended") == 2
    size = path.stat().st_size
    store.refresh()
    assert path.stat().st_size == size
    assert store.history()[0].status == "crashed"


def test_a_crash_in_mid_line_is_ended_on_a_line_of_its_own(
    store: ExecutionStore,
) -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()  # gone, and pid_start="-1" matches no process should the pid be reused
    host = socket.gethostname()
    events = run_events("r", start=T0, status=None, pid=child.pid, host=host, pid_start="-1")
    path = write_events(store, events, "r")
    with open(path, "ab") as handle:
        handle.write(b'{"seq":99,"kind":"out')
    execution = store.get_execution("r")
    assert execution.status is State.CRASHED
    assert [d["seq"] for d in read_journal(path)] == [1, 2]


def test_an_owner_on_another_host_is_left_running(store: ExecutionStore) -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    write_events(store, run_events("r", status=None, pid=child.pid, host="elsewhere"), "r")
    store.refresh()
    assert store.get_execution("r").status is State.RUNNING
