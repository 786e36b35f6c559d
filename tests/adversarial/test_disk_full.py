"""A full disk under the store (issue 13): the run ends promptly, nothing hangs or is left over.

The disk is a real one: a 1 MiB tmpfs mounted for the test (the store's ``storagePath`` points
into it), filled by a task, so the journal's writes fail with ENOSPC exactly as on a full disk.
Mounting needs root (CI containers run as root); where it is refused the tests are skipped.
``tests/engine/test_sink_faults.py`` covers the same engine path without root, with a journal
on ``/dev/full`` and with a sink that raises.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from jupyter_workflows.engine import WorkflowOrchestrator
from tests.conftest import cli, write_workflow

PROMPT = 5.0  # seconds from the disk filling up to the runner's exit


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs, unmounted afterwards."""
    disk = tmp_path / "disk"
    disk.mkdir()
    try:
        mounted = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(disk)],
            capture_output=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        pytest.skip(f"cannot mount a tmpfs here: {exc}")
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], capture_output=True, timeout=10)


@pytest.fixture
def project_on(small_disk: Path, project: Path) -> Path:
    """``project`` with its store on the small disk."""
    (project / "workflows").mkdir()
    config = {"storagePath": str(small_disk / "store")}
    (project / "workflows" / "config.json").write_text(json.dumps(config))
    return project


def fill(disk: Path) -> None:
    """Fill ``disk`` to the last byte."""
    with open(disk / "filler", "wb") as out:
        try:
            while True:
                out.write(b"\0" * 65536)
                out.flush()
        except OSError:
            pass


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    return status != "Z"


def test_disk_full_mid_run_stops_the_run_within_seconds(
    project_on: Path, small_disk: Path, tmp_path: Path
) -> None:
    """The probe: ENOSPC on the journal mid-run used to leave the runner waiting forever for
    a dependent that never started. Now the run stops: running tasks are killed, dependents
    never start, exit code 3 and one line naming the journal and the errno."""
    side = tmp_path / "side"  # on the real disk: what the tasks report
    side.mkdir()
    workflow: dict[str, Any] = {
        "name": "filler",
        "tasks": [
            {"id": "long", "type": "shell", "command": f"echo $$ > {side}/long.pid; exec sleep 60"},
            {
                "id": "fill",
                "type": "shell",
                "command": (
                    f"while [ ! -s {side}/long.pid ]; do sleep 0.05; done; "
                    f"head -c 4000000 /dev/zero > {small_disk}/filler 2>/dev/null; "
                    f"date +%s.%N > {side}/full-at; "
                    'for i in $(seq 1 2000); do echo "output line $i of the filling task"; done; '
                    "sleep 60"
                ),
            },
            {
                "id": "after",
                "type": "shell",
                "command": f"touch {side}/after-ran",
                "depends_on": ["fill"],
            },  # fmt: skip  # noqa: E501
        ],
    }
    write_workflow(project_on, workflow)

    done = cli(project_on, "run", "wf.json", timeout=60)
    exited = time.time()

    full_at = float((side / "full-at").read_text())
    took = exited - full_at
    print(f"\ndisk full -> runner exited: {took:.2f} s")
    assert took < PROMPT, f"the runner took {took:.1f} s to stop after the disk filled up"
    assert done.returncode == 3, done
    assert "Traceback" not in done.stderr, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, done.stderr
    journals = small_disk / "store" / "journals"
    (journal,) = journals.glob("*.jsonl")
    assert str(journal) in errors[0] and "[Errno 28]" in errors[0], errors[0]
    assert not (side / "after-ran").exists(), "a dependent started after the store failed"
    long_pid = int((side / "long.pid").read_text())
    assert not pid_alive(long_pid), "the running task was left behind"

    # What was journalled stays readable: whole lines only, and once there is room again the
    # history shows the run, ended as crashed, with the output recorded before the fault.
    assert journal.read_bytes().endswith(b"\n"), "a cut-off line was left in the journal"
    (small_disk / "filler").unlink()
    history = cli(project_on, "history", "--json")
    assert history.returncode == 0, history.stderr
    (run,) = json.loads(history.stdout)
    assert run["status"] == "crashed"
    status = json.loads(cli(project_on, "status", run["id"], "--json", "--logs", "5").stdout)
    tasks = {task["id"]: task for task in status["tasks"]}
    assert tasks["fill"]["status"] == "crashed"
    assert tasks["after"]["status"] not in {"running", "succeeded"}
    shown = cli(project_on, "status", run["id"], "--logs", "3").stdout
    assert "of the filling task" in shown, "the output journalled before the fault is lost"


def test_an_index_made_on_a_full_disk_is_rebuilt_once_there_is_room(
    project_on: Path, small_disk: Path
) -> None:
    """The probe: ``workflow history`` on a full disk left a zero-byte ``index.duckdb`` that
    every later read refused until it was deleted by hand."""
    orchestrator = WorkflowOrchestrator(project_on)
    for n in range(2):
        orchestrator.execute({"name": f"wf{n}", "tasks": [
            {"id": "t", "type": "shell", "command": f"echo {n}"}]})  # fmt: skip
    fill(small_disk)

    full = cli(project_on, "history")
    assert full.returncode != 0
    assert "Traceback" not in full.stderr, full.stderr
    assert "No space left on device" in full.stderr, full.stderr

    (small_disk / "filler").unlink()
    later = cli(project_on, "history", "--json")
    assert later.returncode == 0, later.stderr
    assert sorted(r["workflow"] for r in json.loads(later.stdout)) == ["wf0", "wf1"]
