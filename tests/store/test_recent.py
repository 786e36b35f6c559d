"""Recent runs: the per-workflow file runners keep, checked against the index it stands for."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from jupyter_workflows.engine import WorkflowOrchestrator
from jupyter_workflows.store import ExecutionStore
from jupyter_workflows.store.recent import KEEP, read_recent
from tests.conftest import make_workflow

FLAKY = make_workflow({"id": "a", "type": "shell", "command": "exit ${env.CODE}"}, name="flaky")


def run(store: ExecutionStore, root: Path, code: str) -> str:
    orchestrator = WorkflowOrchestrator(root, store=store)
    return orchestrator.execute(FLAKY, env={"CODE": code}, raise_on_failure=False).id


def test_runners_keep_the_same_answers_as_the_index(store: ExecutionStore, tmp_path: Path) -> None:
    ids = [run(store, tmp_path, code) for code in "0100010"]
    recent = read_recent(store.path, "flaky")
    assert recent is not None and recent.complete  # a new store: every run is in the file
    assert not store.index_path.exists()  # and nobody opened DuckDB for it
    for execution_id in ids:
        assert recent.finished_statuses("flaky", up_to=execution_id, limit=5) == (
            store.finished_statuses("flaky", up_to=execution_id, limit=5)
        )
        # The index keeps times to the microsecond: durations agree to a few of them.
        assert recent.success_durations("flaky", before=execution_id, limit=3) == pytest.approx(
            store.success_durations("flaky", before=execution_id, limit=3), abs=0.01
        )


def test_a_file_started_in_a_store_with_history_is_seeded_once(
    store: ExecutionStore, tmp_path: Path
) -> None:
    old = [run(store, tmp_path, "1") for _ in range(3)]
    for path in (store.path / "recent").iterdir():
        path.unlink()  # as a store written before this file existed
    (store.path / "recent").rmdir()
    new = run(store, tmp_path, "0")
    recent = read_recent(store.path, "flaky")
    assert recent is not None and not recent.complete  # it cannot know the earlier runs
    assert [r.id for r in recent.runs] == [new]

    from jupyter_workflows.store.recent import RecentRun, seed

    rows = store.recent_finished("flaky", KEEP)
    seeded = seed(store.path, "flaky", [RecentRun(*row) for row in rows])
    assert seeded.complete and [r.id for r in seeded.runs] == [*old, new]
    assert seeded.finished_statuses("flaky", up_to=new, limit=20) == ["succeeded"] + ["failed"] * 3


RUNNER = """
import sys, time
from jupyter_workflows.execution.events import RunStarted
from jupyter_workflows.execution.owner import current_owner
from jupyter_workflows.store import ExecutionStore

store = ExecutionStore(sys.argv[1])
pid, host, pid_start = current_owner()
write = store.open_journal("run-1")
write(RunStarted(execution_id="run-1", workflow="flaky", pid=pid, host=host, pid_start=pid_start))
print("ready", flush=True)
time.sleep(120)
"""


def test_crash_detection_adds_the_crashed_run(store: ExecutionStore, tmp_path: Path) -> None:
    first = run(store, tmp_path, "0")
    child = subprocess.Popen(
        [sys.executable, "-c", RUNNER, str(store.path)], stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None and child.stdout.readline().strip() == "ready"
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    store.refresh()  # finds the runner gone, ends the run as crashed
    recent = read_recent(store.path, "flaky")
    assert recent is not None
    assert [(r.id, r.status) for r in recent.runs] == [(first, "succeeded"), ("run-1", "crashed")]


def test_cleanup_forgets_removed_runs(store: ExecutionStore, tmp_path: Path) -> None:
    gone = run(store, tmp_path, "0")
    store.cleanup(datetime.now(timezone.utc) + timedelta(seconds=1))  # everything before now
    later = run(store, tmp_path, "1")
    recent = read_recent(store.path, "flaky")
    assert recent is not None and gone not in [r.id for r in recent.runs]
    assert [r.id for r in recent.runs] == [later]
