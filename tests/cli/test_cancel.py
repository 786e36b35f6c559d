"""``workflow cancel``: a real ``workflow run`` cancelled by another process, through the store."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from jupyter_workflows.execution.records import Execution
from jupyter_workflows.execution.states import State
from jupyter_workflows.store import ExecutionStore, default_store_path, read_journal
from tests.conftest import cli
from tests.runs import Runner, running


@pytest.fixture
def runner(project: Path) -> Iterator[Runner]:
    yield from running(project)


def cancel_timed(runner: Runner, *args: str) -> tuple[subprocess.Popen[str], float | None]:
    """Run ``workflow cancel ARGS`` and note when its request appeared in the store."""
    request = runner.store.cancel_request_path(runner.execution_id)
    command = subprocess.Popen(
        [sys.executable, "-m", "jupyter_workflows", "cancel", *args],
        cwd=runner.project,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    requested = None
    while command.poll() is None:
        if requested is None and request.exists():
            requested = time.time()
        time.sleep(0.005)
    return command, requested


def test_cancel_by_prefix_stops_a_cli_run_within_two_seconds(runner: Runner) -> None:
    tree = runner.task_processes()
    assert len(tree) == 4 and all(p.alive() for p in tree)

    command, requested = cancel_timed(runner, runner.execution_id[:8])
    out, err = command.communicate()
    assert command.returncode == 0, err
    assert f"execution {runner.execution_id} (workflow long): cancelled" in out

    execution = runner.store.get_execution(runner.execution_id)
    assert execution.status is State.CANCELLED
    assert execution.cancelled_by == "cli"
    assert execution.error is not None and execution.error.startswith(
        "cancelled on request from cli"
    )
    assert {t.status for t in execution.tasks.values()} == {State.CANCELLED}
    assert requested is not None and execution.ended_at is not None
    assert execution.ended_at - requested < 2.0
    assert not [p for p in tree if p.alive()]
    # The owner ends as a cancelled run does, and removed the request.
    assert runner.process.wait(timeout=10) == 130
    assert not runner.store.cancel_request_path(runner.execution_id).exists()
    # The journal, the source of truth, says who asked.
    path = runner.store.journal_location(runner.execution_id)
    assert path is not None
    ended = read_journal(path)[-1]
    assert (ended["kind"], ended["status"], ended["cancelled_by"]) == (
        "run_ended",
        "cancelled",
        "cli",
    )

    # Shown by status, status --json and history.
    status = cli(runner.project, "status", runner.execution_id[:8])
    assert "cancelled (by cli)" in status.stdout
    as_json = json.loads(cli(runner.project, "status", runner.execution_id, "--json").stdout)
    assert as_json["cancelled_by"] == "cli"
    history = json.loads(cli(runner.project, "history", "--json").stdout)
    assert history[0]["cancelled_by"] == "cli"

    again = cli(runner.project, "cancel", runner.execution_id)
    assert again.returncode == 1
    assert "is not running: it has ended: cancelled" in again.stderr


def test_no_wait_returns_at_once_and_the_run_still_ends_cancelled(runner: Runner) -> None:
    result = cli(runner.project, "cancel", runner.execution_id, "--no-wait")
    assert result.returncode == 0, result.stderr
    assert "cancel requested" in result.stdout
    assert runner.process.wait(timeout=10) == 130
    assert runner.store.get_execution(runner.execution_id).cancelled_by == "cli"


def test_a_dead_owner_is_reported_and_recorded_crashed(runner: Runner) -> None:
    tree = runner.task_processes()
    runner.process.send_signal(signal.SIGKILL)
    runner.process.wait()
    result = cli(runner.project, "cancel", runner.execution_id[:6])
    assert result.returncode == 1
    assert "is not running" in result.stderr and "died" in result.stderr
    assert "recorded as crashed" in result.stderr
    assert "Traceback" not in result.stderr
    assert runner.store.get_execution(runner.execution_id).status is State.CRASHED
    deadline = time.monotonic() + 5
    while [p for p in tree if p.alive()] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [p for p in tree if p.alive()]
    assert not runner.store.cancel_request_path(runner.execution_id).exists()


def _ended(store: ExecutionStore, execution_id: str, status: State) -> None:
    now = time.time()
    store.save_execution(
        Execution(
            id=execution_id,
            workflow="done",
            status=status,
            started_at=now - 5,
            ended_at=now,
            error=None if status is State.SUCCEEDED else "task t failed",
        )
    )


def test_bad_input_is_refused_with_a_clear_message(project: Path) -> None:
    store = ExecutionStore(default_store_path(project))
    _ended(store, "abc-1", State.SUCCEEDED)
    _ended(store, "abc-2", State.FAILED)

    unknown = cli(project, "cancel", "zzz")
    assert unknown.returncode == 1
    assert unknown.stderr.strip() == "error: no execution with id 'zzz'"

    ambiguous = cli(project, "cancel", "abc")
    assert ambiguous.returncode == 1
    assert "prefix 'abc' matches 2 executions: abc-1, abc-2" in ambiguous.stderr

    ended = cli(project, "cancel", "abc-2")
    assert ended.returncode == 1
    assert "execution 'abc-2' is not running: it has ended: failed (task t failed)" in ended.stderr
    assert not store.requests_dir.exists()  # nothing was asked of anyone

    empty = cli(project, "cancel", "")
    assert empty.returncode == 1 and "no execution" in empty.stderr
