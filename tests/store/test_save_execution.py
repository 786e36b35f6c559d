"""save_execution: an Execution record written as a journal comes back the same."""

from __future__ import annotations

import json

from jupyter_workflows.execution.records import Attempt, Execution, TaskRecord
from jupyter_workflows.execution.states import State
from jupyter_workflows.store import ExecutionStore, read_journal

from .helpers import T0


def sample(status: State = State.FAILED) -> Execution:
    execution = Execution(
        id="saved-1",
        workflow="etl",
        status=status,
        version="2",
        file="etl.json",
        project_root="/p",
        trigger="webhook",
        started_at=T0,
        ended_at=T0 + 10.5,
        error="task load failed",
        pid=42,
        host="h",
        executor="dask",
        cluster="tcp://10.0.0.5:8786",
        dashboard="http://10.0.0.5:8787/status",
    )
    execution.tasks["extract"] = TaskRecord(
        id="extract",
        name="Extract",
        type="python",
        status=State.SUCCEEDED,
        started_at=T0 + 0.125,
        ended_at=T0 + 2.25,
        exit_code=0,
        result={"rows": [1, 2]},
        outputs={"path": "/tmp/x"},
        attempts=[
            Attempt(
                1,
                State.FAILED,
                T0 + 0.125,
                T0 + 1,
                exit_code=1,
                error="flaky",
                executor="dask",
                worker="tcp://10.0.0.7:40123",
                host="node-7",
            ),
            Attempt(
                2,
                State.SUCCEEDED,
                T0 + 1.5,
                T0 + 2.25,
                exit_code=0,
                executor="dask",
                worker="tcp://10.0.0.8:40555",
                host="node-8",
            ),
        ],
        log_tail=["reading", "done"],
    )
    execution.tasks["load"] = TaskRecord(
        id="load",
        depends_on=["extract"],
        status=State.FAILED,
        started_at=T0 + 3,
        ended_at=T0 + 10.5,
        exit_code=2,
        error="boom",
        parent="group",
        attempts=[Attempt(1, State.FAILED, T0 + 3, T0 + 10.5, exit_code=2, error="boom")],
    )
    execution.tasks["report"] = TaskRecord(id="report", depends_on=["load"])
    return execution


def test_save_execution_round_trip(store: ExecutionStore) -> None:
    original = sample()
    store.save_execution(original)
    loaded = store.get_execution("saved-1", logs=10)
    assert loaded.to_dict() == original.to_dict()
    assert loaded.task("extract").log_tail == ["reading", "done"]
    assert (loaded.pid, loaded.host) == (42, "h")
    # Where each attempt ran is part of the record (to_dict compares it too).
    assert [a.worker for a in loaded.task("extract").attempts] == [
        "tcp://10.0.0.7:40123",
        "tcp://10.0.0.8:40555",
    ]
    assert loaded.task("load").attempts[0].executor is None  # never placed: unknown
    assert (loaded.executor, loaded.dashboard) == ("dask", "http://10.0.0.5:8787/status")
    kinds = [d["kind"] for d in read_journal(store.journal_location("saved-1"))]
    assert kinds[0] == "run_started" and kinds[-1] == "run_ended"


def test_saving_again_replaces_the_execution_and_its_logs(store: ExecutionStore) -> None:
    store.save_execution(sample())
    changed = sample(State.SUCCEEDED)
    changed.error = None
    changed.tasks["extract"].log_tail = ["only line"]
    store.save_execution(changed)
    loaded = store.get_execution("saved-1", logs=10)
    assert loaded.status is State.SUCCEEDED and loaded.error is None
    assert [line.line for line in store.logs("saved-1")] == ["only line"]
    assert len(store.history()) == 1
    # No temporary file is left behind for a refresh to trip over.
    files = sorted(p.relative_to(store.journals_dir) for p in store.journals_dir.rglob("*"))
    assert [str(f) for f in files] == ["done", "done/saved-1.jsonl"]


def test_a_saved_running_execution_stays_open(store: ExecutionStore) -> None:
    execution = sample(State.RUNNING)
    execution.ended_at = None
    execution.host = ""  # an unknown owner is never declared dead
    execution.tasks["load"].status = State.RUNNING
    execution.tasks["load"].ended_at = None
    store.save_execution(execution)
    loaded = store.get_execution("saved-1")
    assert loaded.status is State.RUNNING
    assert loaded.task("load").status is State.RUNNING
    assert json.loads(store.journal_path("saved-1").read_text().splitlines()[-1])["kind"] != (
        "run_ended"
    )
