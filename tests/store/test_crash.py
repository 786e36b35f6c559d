"""Crash detection against real runner processes killed with SIGKILL."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from jupyter_workflows.execution.events import ProcessStarted
from jupyter_workflows.execution.owner import process_start
from jupyter_workflows.execution.processes import TAG_VAR, new_tag
from jupyter_workflows.execution.states import State
from jupyter_workflows.store import ExecutionStore, read_journal

from .helpers import T0, TaskPlan, run_events, write_events, write_run

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


def _dead_owner() -> tuple[int, str]:
    """A pid whose process is gone, and this host: an owner a reader can prove dead."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid, socket.gethostname()


@pytest.fixture
def sleeper() -> Iterator:
    started: list[subprocess.Popen[bytes]] = []

    def start(env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        child = subprocess.Popen(["sleep", "60"], env={**os.environ, **(env or {})})
        started.append(child)
        return child

    yield start
    for child in started:
        child.kill()
        child.wait()


def test_a_reader_ends_what_a_dead_runner_left_running(store: ExecutionStore, sleeper) -> None:
    """The journal names the run's tag and process groups; a reader that finds the run
    crashed ends what of it still runs (here: a process that carries the tag, and one that
    leads a recorded group)."""
    pid, host = _dead_owner()
    tag = new_tag("r")
    tagged, leading = sleeper({TAG_VAR: f"{tag}/1"}), sleeper()
    events = run_events("r", status=None, pid=pid, host=host, pid_start="-1")
    events[0].run_tag = tag  # type: ignore[attr-defined]
    events.append(
        ProcessStarted(execution_id="r", pid=leading.pid, pid_start=process_start(leading.pid))
    )
    write_events(store, events, "r")
    assert store.get_execution("r").status is State.CRASHED
    assert tagged.wait(2) == -signal.SIGKILL
    assert leading.wait(2) == -signal.SIGKILL


def test_a_reader_never_kills_a_process_that_is_not_the_runs(
    store: ExecutionStore, sleeper
) -> None:
    """A recorded pid now used by another process (another start time), a process of
    another run, one with no tag: all left alone."""
    pid, host = _dead_owner()
    tag = new_tag("r")
    reused, other_run, untagged = sleeper(), sleeper({TAG_VAR: new_tag("r")}), sleeper()
    events = run_events("r", status=None, pid=pid, host=host, pid_start="-1")
    events[0].run_tag = tag  # type: ignore[attr-defined]
    events.append(ProcessStarted(execution_id="r", pid=reused.pid, pid_start="1"))
    events.append(ProcessStarted(execution_id="r", pid=untagged.pid, pid_start=None))
    write_events(store, events, "r")
    assert store.get_execution("r").status is State.CRASHED
    time.sleep(0.2)
    assert [c.poll() for c in (reused, other_run, untagged)] == [None, None, None]


def test_a_forged_journal_cannot_name_a_foreign_cgroup(store: ExecutionStore, tmp_path) -> None:
    """A path in the journal that is not the run's own cgroup folder is refused."""
    pid, host = _dead_owner()
    tag = new_tag("r")
    decoy = tmp_path / "cgroup"
    decoy.mkdir()
    (decoy / "cgroup.kill").write_text("")
    events = run_events("r", status=None, pid=pid, host=host, pid_start="-1")
    events[0].run_tag = tag  # type: ignore[attr-defined]
    events.append(ProcessStarted(execution_id="r", pid=pid, cgroup=str(decoy)))
    write_events(store, events, "r")
    assert store.get_execution("r").status is State.CRASHED
    assert (decoy / "cgroup.kill").read_text() == ""  # never written


def test_a_crashed_runs_end_is_its_last_sign_of_life_and_says_so(store: ExecutionStore) -> None:
    """Not its last event: the runner touched its journal since (a heartbeat, its guardian)."""
    pid, host = _dead_owner()
    events = run_events(
        "r", start=T0, status=None, pid=pid, host=host, pid_start="-1", tasks=[TaskPlan("a")]
    )
    del events[-3:]  # a still running: no attempt end, no task end
    path = write_events(store, events, "r")
    os.utime(path, (T0 + 5, T0 + 5))
    execution = store.get_execution("r")
    assert execution.status is State.CRASHED
    assert execution.end_estimated is True
    assert execution.ended_at == pytest.approx(T0 + 5)
    assert execution.duration == pytest.approx(5)
    assert execution.task("a").ended_at == pytest.approx(T0 + 5)
    assert execution.to_dict()["end_estimated"] is True
    write_run(store, "fine", tasks=[TaskPlan("a")])
    assert store.get_execution("fine").end_estimated is False
