"""Several real processes recording and reading one store at once lose nothing."""

from __future__ import annotations

import subprocess
import sys

import pytest

from jupyter_workflows.store import ExecutionStore

WORKER = """
import sys, time
from jupyter_workflows.execution.events import (AttemptEnded, AttemptStarted, OutputLine, RunEnded,
                                      RunStarted, TaskEnded, TaskStarted)
from jupyter_workflows.store import ExecutionStore
from jupyter_workflows.execution.owner import current_owner

store, worker = ExecutionStore(sys.argv[1]), sys.argv[2]
pid, host, pid_start = current_owner()
for n in range(25):
    eid = f"w{worker}-{n:02d}"
    with store.open_journal(eid) as write:
        write(RunStarted(execution_id=eid, workflow=f"wf{worker}", pid=pid, host=host,
                         pid_start=pid_start, tasks=[{"id": "t"}]))
        write(TaskStarted(execution_id=eid, task_id="t"))
        write(AttemptStarted(execution_id=eid, task_id="t", attempt=1))
        write(OutputLine(execution_id=eid, task_id="t", attempt=1, stream="stdout", line=eid))
        write(AttemptEnded(execution_id=eid, task_id="t", attempt=1, status="succeeded",
                           started_at=time.time(), exit_code=0))
        write(TaskEnded(execution_id=eid, task_id="t", status="succeeded", attempts=1))
        write(RunEnded(execution_id=eid, status="succeeded"))
    store.record(eid)
    if n % 5 == 0:
        store.history(limit=5)  # readers and writers interleave
print("done")
"""


@pytest.mark.slow
def test_four_processes_recording_at_once_lose_nothing(store: ExecutionStore) -> None:
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(store.path), str(w)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for w in range(4)
    ]
    results = [worker.communicate(timeout=120) for worker in workers]
    for worker, (out, err) in zip(workers, results, strict=True):
        assert worker.returncode == 0, err
        assert out.strip() == "done"
    history = store.history(limit=None)
    assert len(history) == 100
    assert {s.status for s in history} == {"succeeded"}
    assert {s.workflow for s in history} == {"wf0", "wf1", "wf2", "wf3"}
    _, rows = store.query("SELECT count(*), count(DISTINCT line) FROM logs")
    assert rows == [(100, 100)]
    _, rows = store.query("SELECT count(*) FROM task_runs WHERE status = 'succeeded'")
    assert rows == [(100,)]
