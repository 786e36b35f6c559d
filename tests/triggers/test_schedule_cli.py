"""The real ``workflow schedule`` command, as a subprocess.

Cron's resolution is one minute, so these tests use the command's hidden ``--seconds`` option:
a six-field expression with a leading seconds field ("* * * * * *" fires every second). Only
the expression's resolution differs; the clock, the sleeping, the store and the signals are
the real ones. The slot arithmetic and the policies are tested on a fake clock in
test_cron.py and test_scheduler.py.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from jupyter_workflows.store import ExecutionStore, default_store_path
from tests.conftest import cli, write_workflow

EVERY_SECOND = ["--cron", "* * * * * *", "--seconds", "--tz", "UTC"]


@pytest.fixture
def daemons() -> Iterator[Callable[..., tuple[subprocess.Popen[bytes], Path]]]:
    """Start ``workflow schedule`` processes; any still running at the end are killed."""
    started: list[subprocess.Popen[bytes]] = []

    def start(root: Path, *args: str) -> tuple[subprocess.Popen[bytes], Path]:
        output = root / f"daemon-{len(started)}.log"
        with open(output, "wb") as sink:
            process = subprocess.Popen(
                [sys.executable, "-m", "jupyter_workflows", "schedule", *args],
                cwd=root,
                stdout=sink,
                stderr=subprocess.STDOUT,
            )
        started.append(process)
        return process, output

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait()


def wait_for(condition: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def recorder(root: Path, name: str = "tick", **fields: object) -> Path:
    """A workflow appending its SCHEDULED_TIME to fired.txt."""
    command = f'printf "%s\\n" "$SCHEDULED_TIME" >> {root / "fired.txt"}'
    data = {"name": name, "tasks": [{"id": "t", "type": "shell", "command": command}], **fields}
    return write_workflow(root, data, f"{name}.json")


def history(root: Path) -> list[Any]:
    return ExecutionStore(default_store_path(root)).history(limit=None)


# -- bad input ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--cron", "0 */6 * *"], "invalid cron schedule '0 */6 * *'"),
        (["--cron", "61 * * * *"], "out of range"),
        (["--cron", "0 0 30 2 *"], "never matches a date"),
        (["--cron", "0 * * * *", "--tz", "Europe/Zurch"], "unknown time zone 'Europe/Zurch'"),
        ([], "has no cron trigger; give a schedule with --cron"),
    ],
)
def test_bad_input_exits_2_with_a_clear_message(
    project: Path, args: list[str], message: str
) -> None:
    recorder(project)
    result = cli(project, "schedule", "tick.json", *args)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("error: ") and message in result.stderr
    assert "Traceback" not in result.stderr
    assert not default_store_path(project).exists()  # nothing scheduled, nothing recorded


def test_a_missing_or_invalid_file_exits_2(project: Path) -> None:
    missing = cli(project, "schedule", "nope.json", "--cron", "0 * * * *")
    assert missing.returncode == 2 and "nope.json" in missing.stderr
    write_workflow(project, {"name": "bad", "tasks": []}, "bad.json")
    invalid = cli(project, "schedule", "bad.json", "--cron", "0 * * * *")
    assert invalid.returncode == 2 and "tasks" in invalid.stderr
    assert "Traceback" not in missing.stderr + invalid.stderr
    choice = cli(project, "schedule", "bad.json", "--overlap", "sometimes")
    assert choice.returncode == 2 and "'sometimes' is not one of" in choice.stderr


# -- running ------------------------------------------------------------------------------------


def test_uses_the_workflows_own_trigger_and_prints_the_next_fire_times(
    project: Path, daemons: Callable[..., tuple[subprocess.Popen[bytes], Path]]
) -> None:
    trigger = {"type": "cron", "config": {"schedule": "0 6 * * *", "timezone": "Europe/Zurich"}}
    recorder(project, trigger=trigger)
    process, output = daemons(project, "tick.json")
    wait_for(lambda: "Ctrl-C or SIGTERM stops" in output.read_text())
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=15) == 0
    text = output.read_text()
    assert "'0 6 * * *' in Europe/Zurich; overlap skip, catch-up none" in text
    upcoming = [line.split("next: ")[1] for line in text.splitlines() if "next: " in line]
    assert len(upcoming) == 3
    assert all(t[11:19] == "06:00:00" and t[-6:] in ("+01:00", "+02:00") for t in upcoming)


def test_runs_each_slot_with_its_time_and_stops_on_sigterm(
    project: Path, daemons: Callable[..., tuple[subprocess.Popen[bytes], Path]]
) -> None:
    recorder(project)
    process, output = daemons(project, "tick.json", *EVERY_SECOND)
    wait_for(lambda: len(lines(project / "fired.txt")) >= 3)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=15) == 0
    fired = lines(project / "fired.txt")
    stamps = [time.mktime(time.strptime(f[:19], "%Y-%m-%dT%H:%M:%S")) for f in fired]
    assert all(f.endswith("+00:00") for f in fired)
    assert len(set(fired)) == len(fired) and stamps == sorted(stamps)
    rows = history(project)
    assert len(rows) >= len(fired)
    assert {r.trigger for r in rows} == {"cron"}
    log = output.read_text()
    assert log.count("started run") == len([r for r in rows if r.status != "skipped"])
    assert "ended: succeeded in" in log
    assert "Traceback" not in log


def test_sigterm_cancels_the_running_run_and_records_it(
    project: Path, daemons: Callable[..., tuple[subprocess.Popen[bytes], Path]]
) -> None:
    marker = project / "started.txt"
    # The task leaves its shell's pid and becomes a long sleep, so the test can see it end.
    command = f"echo $$ >> {marker}; exec sleep 60"
    data = {"name": "slow", "tasks": [{"id": "t", "type": "shell", "command": command}]}
    write_workflow(project, data, "slow.json")
    process, output = daemons(project, "slow.json", *EVERY_SECOND)
    wait_for(lambda: len(lines(marker)) == 1)
    wait_for(lambda: "skipped, previous run still running" in output.read_text())
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=15) == 0
    sleeper = int(lines(marker)[0])
    with pytest.raises(ProcessLookupError):
        os.kill(sleeper, 0)  # the task's process is gone with the daemon
    statuses = [r.status for r in history(project)]
    assert statuses.count("cancelled") == 1
    assert statuses.count("skipped") >= 1
    assert set(statuses) == {"cancelled", "skipped"}
    assert "ended: cancelled" in output.read_text()


def test_policy_options_and_sigint(
    project: Path, daemons: Callable[..., tuple[subprocess.Popen[bytes], Path]]
) -> None:
    recorder(project)
    options = ["--overlap", "allow", "--catchup", "all"]
    process, output = daemons(project, "tick.json", *EVERY_SECOND, *options)
    wait_for(lambda: len(lines(project / "fired.txt")) >= 1)
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=15) == 130
    text = output.read_text()
    assert "'* * * * * *' in UTC; overlap allow, catch-up all" in text
    assert "stopped" in text and "Traceback" not in text


def test_two_processes_on_one_store_run_each_slot_once(
    project: Path, daemons: Callable[..., tuple[subprocess.Popen[bytes], Path]]
) -> None:
    recorder(project)
    first, first_log = daemons(project, "tick.json", *EVERY_SECOND)
    second, second_log = daemons(project, "tick.json", *EVERY_SECOND)
    both = "Ctrl-C or SIGTERM stops"
    wait_for(lambda: both in first_log.read_text() and both in second_log.read_text())
    seen = len(lines(project / "fired.txt"))
    wait_for(lambda: len(lines(project / "fired.txt")) >= seen + 4)
    for process in (first, second):
        process.send_signal(signal.SIGTERM)
    assert first.wait(timeout=15) == 0 and second.wait(timeout=15) == 0
    fired = lines(project / "fired.txt")
    assert len(fired) == len(set(fired))  # no slot ran twice
    handled = [
        match.group(1)
        for log in (first_log, second_log)
        for match in re.finditer(r"slot (\S+): (?:started run|skipped,)", log.read_text())
    ]
    assert set(fired) <= set(handled)
    assert len(handled) == len(set(handled))  # nor was one skipped twice, or run and skipped
    assert len(history(project)) == len(handled)  # the loser of a slot recorded nothing
    state = json.loads((default_store_path(project) / "schedules" / "tick.json").read_text())
    assert state["mark_utc"][:19] == max(fired)[:19]
