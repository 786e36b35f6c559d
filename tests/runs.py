"""A real ``workflow run`` of a long workflow, as a process of its own, for cancel tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from jupyter_workflows.store import ExecutionStore, default_store_path
from tests.adversarial import procs
from tests.conftest import write_workflow

# Each task writes its own pid and its child's, then waits: a tree to be killed.
LONG = {
    "name": "long",
    "tasks": [
        {
            "id": task_id,
            "type": "shell",
            "command": f"echo $$ > {task_id}.pid; sleep 300 & echo $! >> {task_id}.pid; wait",
        }
        for task_id in ("a", "b")
    ],
}


class Runner:
    """A ``workflow run`` of LONG in ``project`` as a real process, with its store."""

    def __init__(self, project: Path):
        self.project = project
        self.store = ExecutionStore(default_store_path(project))
        write_workflow(project, LONG)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "jupyter_workflows", "run", "wf.json"],
            cwd=project,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.execution_id = self._wait_started()

    def _wait_started(self, timeout: float = 30) -> str:
        """The run's id, once both tasks have written their pids."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            journals = list(self.store.journals_dir.glob("*.jsonl"))
            pids = [self.project / f"{t}.pid" for t in "ab"]
            if journals and all(p.exists() and len(p.read_text().split()) == 2 for p in pids):
                return journals[0].stem
            assert self.process.poll() is None, self.process.communicate()
            time.sleep(0.05)
        raise AssertionError("the run did not start its tasks in time")

    def task_processes(self) -> list[procs.Seen]:
        return procs.pids_in(self.project)

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.communicate()


def running(project: Path) -> Iterator[Runner]:
    """A Runner in ``project``, its process and its tasks' processes ended afterwards."""
    runner = Runner(project)
    yield runner
    runner.close()
    for seen in runner.task_processes():  # whatever a failed test left
        if seen.alive():
            os.kill(seen.pid, signal.SIGKILL)
