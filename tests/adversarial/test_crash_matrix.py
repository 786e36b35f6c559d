"""The crash matrix: a real ``workflow run`` killed with SIGKILL at eleven moments of a run.

After each kill, the next read must tell the truth (the run crashed; every task that ended
before the kill is as it ended, output included; a task that was running crashed; one that
had not started is pending) and no process of the run may be left: neither one the tasks
announced (they write their pids to marker files) nor one whose environment carries the run's
tag, nor one the journal recorded.

Some moments are reached from outside (the test waits for a marker, then kills the runner);
the others are named crash points inside the runner: a ``sitecustomize`` on the runner's
``PYTHONPATH`` makes it SIGKILL itself right after writing a chosen journal line, or halfway
through writing it. Only the runner sees the crash point: it removes the variable at start,
so its tasks do not inherit it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import nbformat
import pytest

from jupyter_workflows.store import ExecutionStore
from tests.adversarial import procs
from tests.conftest import cli

HOOK = """
import os
_point = os.environ.pop("JUPYTER_WORKFLOWS_TEST_CRASH_AT", None)
if _point:
    import signal
    from jupyter_workflows.store import journal as _journal

    _parts, _, _mode = _point.partition("|")
    _wanted = [part.encode() for part in _parts.split("&")]
    _encode, _call, _hit = _journal.encode_line, _journal.JournalWriter.__call__, []

    def _encode_line(data):
        line = _encode(data)
        if all(word in line for word in _wanted):
            _hit.append(True)
            if _mode == "torn":
                return line[: len(line) // 2]
        return line

    def _writer_call(self, event):
        _call(self, event)
        if _hit:
            os.kill(os.getpid(), signal.SIGKILL)

    _journal.encode_line = _encode_line
    _journal.JournalWriter.__call__ = _writer_call
"""

# How long processes of a killed runner may take to die without anyone reading the store.
DIE_WITH_RUNNER = 5.0
GUARDIAN = "jupyter-workflows-guardian"  # in the guardian's command line


def has_cgroup_v2() -> bool:
    """A writable cgroup v2 hierarchy that this process's cgroup can have children in."""
    try:
        line = next(
            entry for entry in Path("/proc/self/cgroup").read_text().splitlines()
            if entry.startswith("0::")
        )  # fmt: skip
    except (OSError, StopIteration):
        return False
    for mount in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = mount.split(" - ")
        if len(fields) == 2 and fields[1].split()[0] == "cgroup2":
            root, point = mount.split()[3], mount.split()[4]
            relative = line[3:]
            if relative.startswith(root):
                folder = Path(point) / relative[len(root) :].lstrip("/")
                return os.access(folder, os.W_OK) and (folder / "cgroup.procs").exists()
    return False


@dataclass
class Case:
    name: str
    tasks: list[dict[str, Any]]
    expect: dict[str, str]  # task id -> status after the read
    crash_at: str | None = None  # a crash point: the runner kills itself there
    ready: Callable[[Path], bool] | None = None  # else: kill from outside once this is true
    kernel: bool = False
    needs_cgroup: bool = False
    attempts: dict[str, list[str]] = field(default_factory=dict)  # attempt statuses to expect


def _shell(task_id: str, command: str, **more: Any) -> dict[str, Any]:
    return {"id": task_id, "type": "shell", "command": command, **more}


def _marked(*names: str) -> Callable[[Path], bool]:
    def ready(marks: Path) -> bool:
        return all((marks / f"{name}.pid").exists() for name in names)

    return ready


def _journal_has(*words: str) -> Callable[[Path], bool]:
    def ready(marks: Path) -> bool:
        for path in (marks.parent / "workflows" / ".executions" / "journals").glob("*.jsonl"):
            if any(all(w in line for w in words) for line in path.read_text().splitlines()):
                return True
        return False

    return ready


def _pid_file(name: str) -> str:
    """Shell that writes its own pid atomically (the test must never read half a file)."""
    return f"echo $$ > M/{name}.tmp && mv M/{name}.tmp M/{name}.pid"


CASES = [
    Case(
        "before the first task",
        [_shell("a", f"{_pid_file('a')}; sleep 300")],
        {"a": "pending"},
        crash_at='"kind":"run_started"',
    ),
    Case(
        "during a task, after one succeeded",
        [
            _shell("first", "echo first done"),
            _shell("b", f"{_pid_file('b')}; sleep 300", depends_on=["first"]),
        ],
        {"first": "succeeded", "b": "crashed"},
        ready=_marked("b"),
    ),
    Case(
        "during a retry wait",
        [_shell("a", "echo trying; exit 3", retry={"attempts": 3, "delay": 60000})],
        {"a": "crashed"},
        ready=_journal_has('"kind":"attempt_ended"', '"retry_in":60.0'),
        attempts={"a": ["failed"]},
    ),
    Case(
        "between two tasks",
        [
            _shell("a", "echo a done"),
            _shell("b", f"{_pid_file('b')}; sleep 300", depends_on=["a"]),
        ],
        {"a": "succeeded", "b": "pending"},
        crash_at='"kind":"task_ended"&"task_id":"a"',
    ),
    Case(
        "during a task whose grandchild runs in the background",
        [
            _shell(
                "a",
                "sleep 300 & echo $! > M/grandchild.tmp; mv M/grandchild.tmp M/grandchild.pid; "
                f"{_pid_file('a')}; wait",
            )
        ],
        {"a": "crashed"},
        ready=_marked("a", "grandchild"),
    ),
    Case(
        "during a task that started a process escaping with setsid",
        [
            _shell(
                "a",
                f"setsid sh -c '{_pid_file('escaped')}; exec sleep 300' & "
                f"{_pid_file('a')}; sleep 300",
            )
        ],
        {"a": "crashed"},
        ready=_marked("a", "escaped"),
    ),
    Case(
        "after a daemon escaped with setsid, a double fork and an empty environment",
        [
            _shell(
                "a",
                # \$\$: the innermost shell's pid, not the task's
                "env -i /bin/sh -c \"setsid /bin/sh -c 'echo \\$\\$ > M/daemon.tmp && "
                "mv M/daemon.tmp M/daemon.pid; exec sleep 300' &\"; "
                f"{_pid_file('a')}; sleep 300",
            )
        ],
        {"a": "crashed"},
        ready=_marked("a", "daemon"),
        needs_cgroup=True,
    ),
    Case(
        "in the grace period of a timeout, the task ignoring SIGTERM",
        [
            _shell(
                "a",
                f"trap '' TERM; {_pid_file('a')}; sleep 300 & "
                "echo $! > M/child.tmp; mv M/child.tmp M/child.pid; "
                "while true; do wait; done",
                timeout=0.5,
            )
        ],
        {"a": "crashed"},
        ready=lambda marks: _marked("a", "child")(marks) and _sleep(1.5),
    ),
    Case(
        "while a notebook kernel runs a cell that started a process",
        [
            _shell("first", "echo first done"),
            {"id": "nb", "type": "notebook", "notebook": "nb.ipynb", "depends_on": ["first"]},
        ],
        {"first": "succeeded", "nb": "crashed"},
        ready=_marked("kernel"),
        kernel=True,
    ),
    Case(
        "halfway through writing the run's end",
        [_shell("a", "echo a done"), _shell("b", "echo b done", depends_on=["a"])],
        {"a": "succeeded", "b": "succeeded"},
        crash_at='"kind":"run_ended"|torn',
    ),
    Case(
        "with tasks in parallel: one done, one failed, one running",
        [
            _shell("ok", "echo fine"),
            _shell("bad", "echo broken >&2; exit 4"),
            _shell("slow", f"{_pid_file('slow')}; sleep 300"),
        ],
        {"ok": "succeeded", "bad": "failed", "slow": "crashed"},
        ready=lambda marks: (
            _marked("slow")(marks) and _journal_has('"task_id":"bad"', '"kind":"task_ended"')(marks)
        ),
    ),
]


def _sleep(seconds: float) -> bool:
    time.sleep(seconds)
    return True


KERNEL_CELL = """
import os, subprocess, time
child = subprocess.Popen(["sleep", "300"])
with open(os.path.join(MARKS, "kernel.tmp"), "w") as f:
    f.write(f"{os.getpid()} {child.pid}")
os.rename(os.path.join(MARKS, "kernel.tmp"), os.path.join(MARKS, "kernel.pid"))
time.sleep(300)
"""


@dataclass
class Crash:
    """What a killed run left: its project, journal and processes."""

    project: Path
    runner: subprocess.Popen[str]
    announced: list[procs.Seen]  # what the tasks said they are
    journal_before: list[dict[str, Any]]

    @property
    def journal(self) -> Path:
        [path] = list((self.project / "workflows" / ".executions" / "journals").glob("*.jsonl"))
        return path

    @property
    def execution_id(self) -> str:
        return self.journal_before[0]["execution_id"]

    def tag(self) -> str | None:
        return self.journal_before[0].get("run_tag")

    def recorded(self) -> list[procs.Seen]:
        """The processes the journal says the run started (pid and start time)."""
        return [
            procs.Seen(line["pid"], line.get("pid_start"))
            for line in self.journal_before
            if line["kind"] == "process_started"
        ]

    def left(self) -> list[str]:
        """Whatever of the run still runs, described."""
        left = [f"announced {p}" for p in procs.living(self.announced)]
        left += [f"recorded {p}" for p in procs.living(self.recorded())]
        tag = self.tag()
        if tag:
            left += [f"tagged pid {pid}" for pid in procs.tagged(tag)]
        return left


def _journal_lines(path: Path) -> list[dict[str, Any]]:
    lines = []
    for raw in path.read_bytes().splitlines():
        try:
            lines.append(json.loads(raw))
        except ValueError:
            pass  # the torn last line
    return lines


def run_and_kill(project: Path, case: Case, *, with_guardian: bool = False) -> Crash:
    """Start a real ``workflow run``, kill it at the case's moment; return what it left.

    ``with_guardian``: kill the runner's guardian first (the two die together).
    """
    marks = project / "M"
    marks.mkdir()
    tasks = json.loads(json.dumps(case.tasks).replace("M/", f"{marks}/"))
    (project / "wf.json").write_text(json.dumps({"name": "matrix", "tasks": tasks}))
    if case.kernel:
        nb = nbformat.v4.new_notebook()
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "P", "language": "python"}
        nb.cells.append(nbformat.v4.new_code_cell(f"MARKS = {str(marks)!r}\n" + KERNEL_CELL))
        nbformat.write(nb, str(project / "nb.ipynb"))
    hook = project / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(HOOK)
    full_env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(hook), os.environ.get("PYTHONPATH", "")]),
    }
    if case.crash_at:
        full_env["JUPYTER_WORKFLOWS_TEST_CRASH_AT"] = case.crash_at
    runner = subprocess.Popen(
        [sys.executable, "-m", "jupyter_workflows", "run", "wf.json"],
        cwd=project,
        env=full_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        if case.ready is not None:
            waited = procs.wait_until(lambda: case.ready(marks) or runner.poll() is not None, 60)
            assert waited is not None and runner.poll() is None, (
                f"the moment never came: {runner.poll()=} {runner.stderr.read() if runner.poll() is not None else ''}"  # noqa: E501
            )
            announced = procs.pids_in(marks)
            if with_guardian:
                [guardian] = [
                    p for p in procs.children_of(runner.pid) if GUARDIAN in procs.cmdline(p)
                ]
                os.kill(guardian, signal.SIGKILL)
            runner.kill()
        runner.wait(timeout=60)
        announced = procs.pids_in(marks) if case.ready is None else announced
    except BaseException:
        runner.kill()
        procs.kill_all(procs.pids_in(marks))
        raise
    assert runner.returncode == -signal.SIGKILL, runner.stderr.read()
    runner.stderr.close()
    [journal] = list((project / "workflows" / ".executions" / "journals").glob("*.jsonl"))
    return Crash(project, runner, announced, _journal_lines(journal))


@pytest.fixture
def crashes() -> Iterator[list[Crash]]:
    made: list[Crash] = []
    yield made
    for crash in made:  # whatever a failed test left running
        procs.kill_all(crash.announced)
        procs.kill_all(crash.recorded())
        # Every task process of the test's project (the tag aside, which may be what failed).
        mine = procs.with_env("WORKFLOW_PROJECT_ROOT", str(crash.project))
        procs.kill_all(procs.seen(pid) for pid in mine)
        tag = crash.tag()
        if tag:
            procs.kill_all(procs.seen(pid) for pid in procs.tagged(tag))
        for line in crash.journal_before:
            if line.get("cgroup"):
                procs.remove_cgroup(Path(line["cgroup"]))


def _status(crash: Crash) -> dict[str, Any]:
    result = cli(crash.project, "status", crash.execution_id, "--json", "--logs", "50")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def _check_record(crash: Crash, case: Case, detail: dict[str, Any]) -> None:
    assert detail["status"] == "crashed"
    tasks = {t["id"]: t for t in detail["tasks"]}
    assert {t: tasks[t]["status"] for t in case.expect} == case.expect
    # Nothing that ended before the kill changed: status, exit code, result, output.
    for line in crash.journal_before:
        if line["kind"] == "task_ended":
            task = tasks[line["task_id"]]
            assert (task["status"], task["exit_code"], task["result"]) == (
                line["status"], line["exit_code"], line["result"],
            )  # fmt: skip
    store = ExecutionStore(crash.project / "workflows" / ".executions")
    logged = [(line.task_id, line.line) for line in store.logs(crash.execution_id)]
    before = [(ln["task_id"], ln["line"]) for ln in crash.journal_before if ln["kind"] == "output"]
    assert logged[: len(before)] == before
    for task_id, statuses in case.attempts.items():
        assert [a["status"] for a in tasks[task_id]["attempts"]][: len(statuses)] == statuses
    for task in tasks.values():
        if task["status"] == "crashed":
            assert task["ended_at"] >= task["started_at"]
            assert all(a["status"] != "running" for a in task["attempts"])


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_a_killed_runner_is_recorded_truthfully_and_leaves_no_process(
    project: Path, case: Case, crashes: list[Crash]
) -> None:
    if case.needs_cgroup and not has_cgroup_v2():
        pytest.skip("needs a writable cgroup v2 hierarchy (the daemon carries no tag)")
    crash = run_and_kill(project, case)
    crashes.append(crash)
    # Without anyone reading the store, what the run started dies with its runner.
    died = procs.wait_until(lambda: not crash.left(), DIE_WITH_RUNNER)
    assert died is not None, f"still running {DIE_WITH_RUNNER}s after the runner: {crash.left()}"
    print(f"{case.name}: {len(crash.announced)} process(es) gone {died * 1000:.0f} ms after")
    _check_record(crash, case, _status(crash))
    assert crash.left() == []
    # How a reader finds what is left: the run's tag (process groups are journaled too, but
    # a kill can come between a process's start and that line).
    assert crash.tag()


WITHOUT_GUARDIAN = [
    c for c in CASES if "grandchild" in c.name or "setsid" in c.name or "kernel" in c.name
]


@pytest.mark.parametrize("case", WITHOUT_GUARDIAN, ids=[c.name for c in WITHOUT_GUARDIAN])
def test_what_outlives_runner_and_guardian_is_ended_by_the_next_read(
    project: Path, case: Case, crashes: list[Crash]
) -> None:
    """The guardian killed with the runner (say, the OOM killer took both): direct children
    still die with the runner, the rest runs on until a reader finds the run crashed."""
    if case.needs_cgroup and not has_cgroup_v2():
        pytest.skip("needs a writable cgroup v2 hierarchy (the daemon carries no tag)")
    crash = run_and_kill(project, case, with_guardian=True)
    crashes.append(crash)
    time.sleep(1.0)
    assert crash.left(), "something outlived the runner (else this test tests nothing)"
    _check_record(crash, case, _status(crash))
    assert crash.left() == []


def test_a_crashed_runs_duration_is_its_runners_last_sign_of_life(
    project: Path, crashes: list[Crash]
) -> None:
    """Killed at 0.9 s into a task: the run's duration says about 0.9 s, not the 0 s of its
    last event, and says it is an estimate."""
    kill_at = 0.9
    case = Case(
        "one long task",
        [_shell("a", "sleep 300")],
        {"a": "crashed"},
        ready=lambda marks: _killed_at(marks, kill_at),
    )
    crash = run_and_kill(project, case)
    crashes.append(crash)
    killed = time.time()
    detail = _status(crash)
    actual = killed - datetime.fromisoformat(detail["started_at"]).timestamp()
    assert actual >= kill_at
    assert detail["end_estimated"] is True
    assert actual - 0.2 < detail["duration"] <= actual + 0.05
    text = cli(crash.project, "status", crash.execution_id)
    assert "estimated" in text.stdout, text.stdout


def test_without_its_guardian_the_estimate_comes_from_the_heartbeat(
    project: Path, crashes: list[Crash]
) -> None:
    kill_at = 1.2
    case = Case(
        "one long task",
        [_shell("a", "sleep 300")],
        {"a": "crashed"},
        ready=lambda marks: _killed_at(marks, kill_at),
    )
    crash = run_and_kill(project, case, with_guardian=True)
    crashes.append(crash)
    killed = time.time()
    detail = _status(crash)
    actual = killed - datetime.fromisoformat(detail["started_at"]).timestamp()
    assert detail["end_estimated"] is True
    # The runner touches its journal every 0.5 s while it runs.
    assert actual - 0.75 < detail["duration"] <= actual + 0.05


def _killed_at(marks: Path, seconds: float) -> bool:
    """True once ``seconds`` have passed since the run started (by its journal)."""
    for path in (marks.parent / "workflows" / ".executions" / "journals").glob("*.jsonl"):
        lines = _journal_lines(path)
        tasks = [line for line in lines if line["kind"] == "process_started"]
        if lines and tasks:
            return time.time() >= lines[0]["at"] + seconds
    return False
