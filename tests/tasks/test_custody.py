"""Custody of a run's processes: real runs, real processes, real signals."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from jupyter_workflows.execution.processes import TAG_VAR
from jupyter_workflows.execution.states import State
from jupyter_workflows.store import read_journal
from jupyter_workflows.tasks.custody import own_cgroup
from jupyter_workflows.tasks.guardian import NAME
from tests.adversarial import procs
from tests.conftest import cli, make_workflow


def _pid(path: Path, timeout: float = 10) -> procs.Seen:
    assert procs.wait_until(path.exists, timeout) is not None, f"{path} never appeared"
    time.sleep(0.05)  # the writer's newline
    return procs.seen(int(path.read_text().split()[0]))


def _journal(project: Path, execution_id: str) -> list[dict]:
    [path] = list(project.glob(f"workflows/.executions/journals/**/{execution_id}.jsonl"))
    return read_journal(path)


def test_every_task_process_carries_the_runs_tag_and_is_recorded(project, run_workflow) -> None:
    wf = make_workflow(
        {"id": "a", "type": "shell", "command": f"echo ${TAG_VAR}; echo $$"},
        {"id": "b", "type": "python", "code": f"import os; print(os.environ['{TAG_VAR}'])"},
    )
    execution = run_workflow(wf)
    assert execution.status is State.SUCCEEDED
    lines = _journal(project, execution.id)
    tag = lines[0]["run_tag"]
    a_tag, a_pid = execution.task("a").log_tail
    assert a_tag == f"{tag}/1" or a_tag.startswith(f"{tag}/")
    assert execution.task("b").log_tail[0].startswith(f"{tag}/")
    assert a_tag != execution.task("b").log_tail[0]  # each process its own
    started = {
        (line["task_id"], line["pid"]) for line in lines if line["kind"] == "process_started"
    }
    assert ("a", int(a_pid)) in started and {t for t, _ in started} == {"a", "b"}


def test_the_runs_end_ends_what_escaped_its_tasks(project, run_workflow, tmp_path) -> None:
    """A process that left its task's group lives while the run does (a later task may use
    it), and ends with the run."""
    escape = f"setsid sh -c 'echo $$ > {tmp_path}/escaped.pid; exec sleep 300' &"
    wf = make_workflow(
        {"id": "a", "type": "shell", "command": f"{escape} sleep 0.2"},
        {
            "id": "b",
            "type": "shell",
            "depends_on": ["a"],
            "command": f"kill -0 $(cat {tmp_path}/escaped.pid) && echo alive",
        },
    )
    try:
        execution = run_workflow(wf)
        escaped = procs.seen(int((tmp_path / "escaped.pid").read_text()))
        assert execution.task("b").log_tail == ["alive"]
        assert not escaped.alive()
    finally:
        procs.kill_all(procs.pids_in(tmp_path))


def test_a_timed_out_attempt_ends_what_escaped_it(project, run_workflow, tmp_path) -> None:
    escape = f"setsid sh -c 'echo $$ > {tmp_path}/escaped.pid; exec sleep 300' &"
    wf = make_workflow(
        {
            "id": "a",
            "type": "shell",
            "command": f"{escape} sleep 300",
            "timeout": 0.5,
            "continue_on_error": True,
        },
        {
            "id": "b",
            "type": "shell",
            "depends_on": ["a"],
            # Alive: a state other than Z(ombie) in /proc (`kill -0` succeeds on a zombie); no
            # /proc entry at all (reaped already, as a subreaper runner does) is gone too.
            "command": f"s=$(cut -d' ' -f3 /proc/$(cat {tmp_path}/escaped.pid)/stat 2>/dev/null); "
            '[ -n "$s" ] && [ "$s" != Z ] && echo alive || echo gone',
        },
    )
    try:
        execution = run_workflow(wf)
        assert execution.task("a").status is State.TIMED_OUT
        assert execution.task("b").log_tail == ["gone"]
    finally:
        procs.kill_all(procs.pids_in(tmp_path))


def test_workflow_run_starts_its_tasks_in_a_cgroup_of_its_own(project, tmp_path) -> None:
    """Untagged, double-forked, whatever: all `workflow run` starts is in its cgroup, which its
    guardian empties and removes once the runner has exited."""
    parent = own_cgroup()
    if parent is None or not os.access(parent, os.W_OK):
        pytest.skip("no writable cgroup v2 hierarchy here")
    daemon = f"env -i setsid sh -c 'echo $$ > {tmp_path}/daemon.pid; exec sleep 300' &"
    # The task waits for the daemon's pid file: ending at once, it could see the daemon
    # emptied out of the cgroup (as it should be) before that wrote its pid (seen under load).
    started = f"until [ -s {tmp_path}/daemon.pid ]; do sleep 0.01; done;"
    command = f"{daemon} {started} cp /proc/self/cgroup {tmp_path}/cg"
    wf = {"name": "g", "tasks": [{"id": "a", "type": "shell", "command": command}]}
    (project / "wf.json").write_text(json.dumps(wf))
    result = cli(project, "run", "wf.json")
    assert result.returncode == 0, result.stderr
    try:
        [line] = [ln for ln in (tmp_path / "cg").read_text().splitlines() if "0::" in ln]
        folder = parent / line.split("0::", 1)[1].strip().rsplit("/", 1)[1]
        assert folder.name.startswith("jupyter-workflows-")
        daemon_process = _pid(tmp_path / "daemon.pid")
        assert procs.wait_until(lambda: not daemon_process.alive(), 5) is not None
        assert procs.wait_until(lambda: not folder.exists(), 5) is not None
    finally:
        procs.kill_all(procs.pids_in(tmp_path))


def test_a_cancelled_run_ends_its_processes_and_escapees(project, tmp_path) -> None:
    """Ctrl-C on `workflow run`: the run is recorded cancelled and nothing of it runs on."""
    wf = {
        "name": "c",
        "tasks": [
            {
                "id": "a",
                "type": "shell",
                "command": f"setsid sh -c 'echo $$ > {tmp_path}/escaped.pid; exec sleep 300' & "
                f"echo $$ > {tmp_path}/a.pid; sleep 300",
            }
        ],
    }
    (project / "wf.json").write_text(json.dumps(wf))
    runner = subprocess.Popen(
        [sys.executable, "-m", "jupyter_workflows", "run", "wf.json"],
        cwd=project,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _pid(tmp_path / "a.pid")
        _pid(tmp_path / "escaped.pid")
        started = procs.pids_in(tmp_path)
        runner.send_signal(signal.SIGINT)
        assert runner.wait(30) == 130
        assert procs.living(started) == []
    finally:
        runner.kill()
        procs.kill_all(procs.pids_in(tmp_path))


def test_workflow_run_adopts_what_its_tasks_orphan(project, tmp_path) -> None:
    """As a subreaper, `workflow run` becomes the parent of a double-forked daemon (rather
    than init), until the run's end ends it."""
    daemon = f"sh -c 'setsid sh -c \"echo \\$\\$ > {tmp_path}/daemon.pid; exec sleep 300\" &'"
    wf = {
        "name": "o",
        "tasks": [
            {
                "id": "a",
                "type": "shell",
                "command": f"{daemon}; echo $$ > {tmp_path}/a.pid; sleep 300",
            }
        ],
    }
    (project / "wf.json").write_text(json.dumps(wf))
    runner = subprocess.Popen(
        [sys.executable, "-m", "jupyter_workflows", "run", "wf.json"],
        cwd=project,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        orphan = _pid(tmp_path / "daemon.pid")
        assert procs.wait_until(lambda: orphan.pid in procs.children_of(runner.pid), 5) is not None
        runner.send_signal(signal.SIGINT)
        assert runner.wait(30) == 130
        assert not orphan.alive()
    finally:
        runner.kill()
        procs.kill_all(procs.pids_in(tmp_path))


def test_a_kernel_dies_with_its_runner(tmp_path: Path) -> None:
    """Kernels belong to the runner process (its pool), forked or spawned: SIGKILL the runner
    and they go at once, without waiting for ipykernel's one-second parent poll."""
    pytest.importorskip("ipykernel")
    script = textwrap.dedent(
        f"""
        import asyncio, os
        from jupyter_workflows.tasks.notebook.pool import KernelPool
        from jupyter_workflows.tasks.notebook.specs import resolve_kernel

        async def main():
            pool = KernelPool(spares=1)
            kernel = await pool.acquire(resolve_kernel("python3"), dict(os.environ), "/")
            with open("{tmp_path}/kernel.pid", "w") as f:
                f.write(str(kernel.pid))
            await asyncio.sleep(300)

        asyncio.run(main())
        """
    )
    runner = subprocess.Popen([sys.executable, "-c", script])
    try:
        kernel = _pid(tmp_path / "kernel.pid", 60)
        server = procs.seen(procs.parent(kernel.pid))
        assert kernel.alive() and server.alive() and server.pid != runner.pid
        runner.kill()
        runner.wait()
        gone = procs.wait_until(lambda: not kernel.alive() and not server.alive(), 0.5)
        assert gone is not None
    finally:
        runner.kill()
        procs.kill_all(procs.pids_in(tmp_path))


def test_a_guardian_killed_while_a_run_runs_is_replaced(project, tmp_path) -> None:
    """Within a heartbeat, a new guardian watches the run: the runner's death still ends it."""
    wf = {
        "name": "k",
        "tasks": [
            {"id": "a", "type": "shell", "command": f"echo $$ > {tmp_path}/a.pid; sleep 300"}
        ],
    }
    (project / "wf.json").write_text(json.dumps(wf))
    runner = subprocess.Popen(
        [sys.executable, "-m", "jupyter_workflows", "run", "wf.json"],
        cwd=project,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )

    def guardians() -> list[int]:
        return [p for p in procs.children_of(runner.pid) if NAME in procs.cmdline(p)]

    root = ("WORKFLOW_PROJECT_ROOT", str(project))  # in every task's environment

    try:
        task = _pid(tmp_path / "a.pid")
        [first] = guardians()
        os.kill(first, signal.SIGKILL)
        assert procs.wait_until(lambda: guardians() not in ([], [first]), 5) is not None
        runner.kill()
        runner.wait()
        assert procs.wait_until(lambda: not task.alive(), 2) is not None
        assert procs.wait_until(lambda: not procs.with_env(*root), 2) is not None
    finally:
        runner.kill()
        procs.kill_all(procs.pids_in(tmp_path))
        procs.kill_all(procs.seen(p) for p in procs.with_env(*root))


def test_a_runner_killed_while_it_moves_into_its_cgroup_leaves_no_folder() -> None:
    parent = own_cgroup()
    if parent is None or not os.access(parent, os.W_OK):
        pytest.skip("no writable cgroup v2 hierarchy here")
    before = set(parent.glob("jupyter-workflows-*"))
    script = textwrap.dedent(
        """
        import os
        from jupyter_workflows.tasks import custody
        custody.join_cgroup = lambda folder, pid=0: os.kill(os.getpid(), 9)
        custody.dedicate()
        """
    )
    runner = subprocess.run([sys.executable, "-c", script])
    assert runner.returncode == -signal.SIGKILL
    made = lambda: set(parent.glob("jupyter-workflows-*")) - before  # noqa: E731
    assert procs.wait_until(lambda: not made(), 5) is not None, made()


def test_a_run_refused_at_load_leaves_no_cgroup_folder(project) -> None:
    """`workflow run` moves into its cgroup on a thread while the file loads; a file that does
    not load ends the command (exit 2) with the cgroup made: its guardian removes it."""
    parent = own_cgroup()
    if parent is None or not os.access(parent, os.W_OK):
        pytest.skip("no writable cgroup v2 hierarchy here")
    before = set(parent.glob("jupyter-workflows-*"))
    (project / "bad.json").write_text('{"name": "b", "tasks": [{"id": "a", "type": "nope"}]}')
    refused = cli(project, "run", "bad.json")
    assert refused.returncode == 2 and "nope" in refused.stderr
    made = lambda: set(parent.glob("jupyter-workflows-*")) - before  # noqa: E731
    assert procs.wait_until(lambda: not made(), 5) is not None, made()


def test_dedicate_soon_hands_what_went_wrong_to_the_waiter(monkeypatch) -> None:
    from jupyter_workflows.tasks import custody

    def broken(**_: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(custody, "dedicate", broken)
    wait = custody.dedicate_soon()
    with pytest.raises(OSError, match="No space left"):
        wait()
