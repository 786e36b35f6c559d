"""``workflow ... | head -1``: a reader that closes the pipe ends the output, not the run."""

from __future__ import annotations

import fcntl
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import cli, write_workflow


def _first_line_then_close(root: Path, *args: str) -> tuple[str, int, str, float]:
    """Run the real command, read one line of its stdout and close it, as ``head -1`` does."""
    started = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, "-m", "jupyter_workflows", *args],
        cwd=root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None and process.stderr is not None
    # A 4 KiB pipe (Linux's smallest; 64 KiB by default) so that a table fills it and the
    # command is still writing when the reader goes, as with a long history into `head`.
    fcntl.fcntl(process.stdout.fileno(), fcntl.F_SETPIPE_SZ, 4096)
    first = process.stdout.readline()
    process.stdout.close()
    try:
        process.wait(timeout=5)
    finally:
        process.kill()
    return first, process.returncode, process.stderr.read(), time.monotonic() - started


@pytest.mark.parametrize(("exit_code", "status"), [(0, "succeeded"), (1, "failed")])
def test_a_run_piped_into_head_finishes_and_is_recorded_as_it_ended(
    project: Path, exit_code: int, status: str
) -> None:
    path = write_workflow(project, {"name": "chatty", "tasks": [
        {"id": "talk", "type": "shell", "live_output": True,
         "command": f"seq 1 5000; exit {exit_code}"},
        {"id": "after", "type": "shell", "command": "sleep 0.5; echo done > after.txt"},
    ]})  # fmt: skip
    first, code, stderr, took = _first_line_then_close(project, "run", str(path))
    assert first.startswith("workflow 'chatty' started")
    assert took < 5
    assert code == exit_code
    assert "Traceback" not in stderr and "BrokenPipe" not in stderr
    assert (project / "after.txt").read_text() == "done\n"  # the run went on to its end
    execution_id = first.split("execution ")[1].rstrip(")\n")
    recorded = json.loads(cli(project, "status", execution_id, "--json").stdout)
    assert recorded["status"] == status
    assert recorded["error"] is None or "pipe" not in recorded["error"].lower()


def test_long_tables_piped_into_head_end_quietly(project: Path) -> None:
    path = write_workflow(project, {"name": "w", "tasks": [
        {"id": f"t{i}", "type": "shell", "command": "seq 1 5"} for i in range(300)]})  # fmt: skip
    ran = cli(project, "run", str(path), "--no-alerts", "--json")
    execution_id = json.loads(ran.stdout)["id"]
    for args in (("status", execution_id), ("monitor",)):  # each prints over 30 KiB
        _first, code, stderr, took = _first_line_then_close(project, *args)
        assert "Traceback" not in stderr and "BrokenPipe" not in stderr, (args, stderr)
        assert code == 0, args  # a reader that has read enough is not an error
        assert took < 5


def test_tables_into_a_pipe_are_plain_columns_one_line_per_row(project: Path) -> None:
    path = write_workflow(project, {"name": "plain", "tasks": [
        {"id": "ok", "type": "shell", "command": "true"},
        {"id": "bad", "type": "shell", "command": "exit 4"},
    ]})  # fmt: skip
    execution_id = json.loads(cli(project, "run", str(path), "--json").stdout)["id"]
    for args in (("history",), ("status", execution_id, "--logs", "0"), ("monitor",)):
        out = cli(project, *args).stdout
        assert not set("│┃━─┏┡└") & set(out), (args, out)
        assert all(line == line.rstrip() for line in out.splitlines()), args
    status = cli(project, "status", execution_id, "--logs", "0").stdout.splitlines()
    header = next(i for i, line in enumerate(status) if line.startswith("task "))
    assert status[header].split() == ["task", "type", "status", "attempts", "duration", "exit",
                                      "error"]  # fmt: skip
    assert status[header + 1].split()[:3] == ["ok", "shell", "succeeded"]
    assert status[header + 2].split()[:3] == ["bad", "shell", "failed"]
    history = cli(project, "history").stdout.splitlines()
    assert history[0].split()[:3] == ["execution", "workflow", "status"]
    assert history[1].split()[:3] == [execution_id[:8], "plain", "failed"]
