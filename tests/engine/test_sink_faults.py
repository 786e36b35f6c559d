"""A sink that fails mid-run stops the run instead of hanging it (issue 13).

The journal is a sink: on a full disk its writes fail inside the engine's callbacks, where an
exception used to kill a job-done callback and leave the run waiting forever for a dependent
that never started. Here without root: a journal on ``/dev/full`` (every write: ENOSPC), and a
sink that raises. ``tests/adversarial/test_disk_full.py`` fills a real disk.
"""

from __future__ import annotations

import asyncio
import errno
import os
import time
from pathlib import Path
from typing import Any

import pytest

from jupyter_workflows.engine import WorkflowOrchestrator
from jupyter_workflows.errors import StoreWriteFailed
from jupyter_workflows.execution.events import Event, OutputLine
from jupyter_workflows.execution.states import State
from jupyter_workflows.store import ExecutionStore

PROMPT = 5.0


def shell(task_id: str, command: str, **fields: Any) -> dict[str, Any]:
    return {"id": task_id, "type": "shell", "command": command, **fields}


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"


def test_a_journal_that_cannot_take_the_first_event_runs_no_task(tmp_path: Path) -> None:
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full here")
    store = ExecutionStore(tmp_path / "store")
    store.journals_dir.mkdir(parents=True)
    store.journal_path("full").symlink_to("/dev/full")
    marker = tmp_path / "ran"
    orchestrator = WorkflowOrchestrator(tmp_path, store=store)
    workflow = {"name": "wf", "tasks": [shell("t", f"touch {marker}")]}

    started = time.monotonic()
    with pytest.raises(StoreWriteFailed) as caught:
        orchestrator.execute(workflow, execution_id="full")

    assert time.monotonic() - started < PROMPT
    assert caught.value.errno == errno.ENOSPC
    assert str(store.journal_path("full")) in str(caught.value)
    assert not marker.exists()


class Breaks:
    """A sink that raises on the first output line of ``task_id``."""

    def __init__(self, task_id: str):
        self.task_id = task_id

    def __call__(self, event: Event) -> None:
        if isinstance(event, OutputLine) and event.task_id == self.task_id:
            raise RuntimeError("the screen went away")


def test_a_sink_that_raises_mid_run_stops_every_task_and_the_run(tmp_path: Path) -> None:
    pid_file, after = tmp_path / "long.pid", tmp_path / "after-ran"
    workflow = {
        "name": "wf",
        "tasks": [
            shell("long", f"echo $$ > {pid_file}; exec sleep 60"),
            shell("talk", f"while [ ! -s {pid_file} ]; do sleep 0.05; done; echo hi; sleep 60"),
            shell("after", f"touch {after}", depends_on=["talk"]),
        ],
    }
    orchestrator = WorkflowOrchestrator(tmp_path, sinks=[Breaks("talk")], kill_grace=2.0)

    async def run() -> None:
        await asyncio.wait_for(orchestrator.execute_async(workflow, execution_id="x"), 30)

    started = time.monotonic()
    with pytest.raises(RuntimeError, match="the screen went away"):
        asyncio.run(run())

    assert time.monotonic() - started < 10  # the tasks would sleep for 60 s
    assert not alive(int(pid_file.read_text())), "a running task was left behind"
    assert not after.exists(), "a dependent started after the sink failed"
    record = orchestrator.store.get_execution("x")  # the journal itself was fine
    assert record.status is State.CRASHED
    assert "event sink failed: RuntimeError: the screen went away" in (record.error or "")
    assert record.tasks["talk"].status is State.CANCELLED
