"""Only what is provably a run's is ever killed: real processes, real signals."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from jupyter_workflows.execution.processes import (
    TAG_VAR,
    Leader,
    end_run,
    is_runner_cgroup,
    leader,
    new_tag,
    signal_run,
    valid_tag,
)
from jupyter_workflows.tasks.custody import join_cgroup, make_cgroup
from tests.adversarial import procs


@pytest.fixture
def spawn() -> Iterator:
    started: list[subprocess.Popen[bytes]] = []

    def start(tag: str | None = None, **options) -> subprocess.Popen[bytes]:
        env = dict(os.environ)
        if tag is not None:
            env[TAG_VAR] = tag
        child = subprocess.Popen(["sleep", "60"], env=env, start_new_session=True, **options)
        started.append(child)
        return child

    yield start
    for child in started:
        child.kill()
        child.wait()


def _alive(child: subprocess.Popen[bytes]) -> bool:
    return child.poll() is None


def test_a_tag_names_its_run_and_only_it() -> None:
    tag = new_tag("run 1/x:y")
    assert valid_tag(tag) and valid_tag(tag + "/3")
    assert tag.startswith("run_1_x_y:")
    assert new_tag("run") != new_tag("run")
    for bad in ("", "run", "run:", "run:xyz", f"{tag}/", f"{tag}/a", None, 7, f"a b:{'0' * 32}"):
        assert not valid_tag(bad), bad


def test_the_runs_tagged_processes_are_killed_and_no_other(spawn) -> None:
    tag, other = new_tag("r"), new_tag("r")
    mine, mine_too = spawn(tag), spawn(f"{tag}/2")
    foreign, near = spawn(other), spawn(tag[:-1] + ("0" if tag[-1] != "0" else "1"))
    untagged = spawn()
    signalled = end_run(tag, timeout=2.0)
    assert signalled == {mine.pid, mine_too.pid}
    mine.wait(2), mine_too.wait(2)
    assert all(_alive(c) for c in (foreign, near, untagged))


def test_a_malformed_tag_matches_nothing(spawn) -> None:
    child = spawn("")
    also = spawn("r")
    assert signal_run("", []) == set() and signal_run("r", []) == set()
    assert _alive(child) and _alive(also)


def test_a_leader_whose_pid_was_reused_is_left_alone(spawn) -> None:
    """A recorded group whose leader's start time differs is another process now."""
    tag = new_tag("r")
    child = spawn()
    recorded = Leader(child.pid, "1")  # what a journal of an older process would say
    assert end_run(tag, [recorded], timeout=0.2) == set()
    assert _alive(child)
    assert end_run(tag, [Leader(child.pid, None)], timeout=0.2) == set()  # no start: no proof
    assert _alive(child)
    # The same pid with its real start time is the recorded process: it goes.
    assert end_run(tag, [leader(child.pid)], timeout=2.0) == {child.pid}
    assert child.wait(2) == -9


def test_processes_of_another_user_are_left_alone(spawn) -> None:
    """A reader kills only processes of the journal's owner."""
    tag = new_tag("r")
    child = spawn(tag)
    someone_else = os.getuid() + 4242
    assert end_run(tag, [leader(child.pid)], uid=someone_else, timeout=0.2) == set()
    assert _alive(child)
    assert end_run(tag, uid=os.getuid(), timeout=2.0) == {child.pid}


def test_only_a_cgroup_named_as_a_runner_names_its_own_is_killed(spawn, tmp_path: Path) -> None:
    folder = make_cgroup()
    if folder is None:
        pytest.skip("no writable cgroup v2 hierarchy here")
    other = folder.parent / "some-service"
    other.mkdir()
    try:
        inside, outside = spawn(), spawn()  # untagged: the cgroup is the proof
        assert join_cgroup(folder, inside.pid) and join_cgroup(other, outside.pid)
        assert is_runner_cgroup(folder) and not is_runner_cgroup(other)
        assert not is_runner_cgroup(folder, uid=os.getuid() + 4242)
        end_run(None, [], [other], timeout=0.2)  # not named as a runner's: refused
        assert _alive(outside)
        signalled = end_run(None, [], [folder], timeout=2.0)
        assert inside.pid in signalled and inside.wait(2) == -9
        assert not folder.exists()  # removed once empty
        assert _alive(outside)
    finally:
        procs.remove_cgroup(other)
        procs.remove_cgroup(folder)


def test_a_cgroup_holding_the_caller_is_never_killed() -> None:
    folder = make_cgroup()
    if folder is None:
        pytest.skip("no writable cgroup v2 hierarchy here")
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from pathlib import Path;"
            "from jupyter_workflows.execution.processes import end_run;"
            "from jupyter_workflows.tasks.custody import join_cgroup;"
            "folder = Path(sys.argv[1]); assert join_cgroup(folder);"
            "end_run(None, [], [folder], timeout=0.2); print('survived')",
            str(folder),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.communicate(timeout=30)[0].strip() == "survived"
    finally:
        procs.remove_cgroup(folder)


def test_a_reader_ends_the_runners_cgroup_known_only_from_run_started(spawn) -> None:
    """Killed between a task's fork and its process_started line (seen in CI: a daemon made
    it out first), the run's journal names the cgroup only in run_started: enough."""
    from jupyter_workflows.execution.events import RunStarted
    from jupyter_workflows.store.crash import end_leftovers

    folder = make_cgroup()
    if folder is None:
        pytest.skip("no writable cgroup v2 hierarchy here")
    try:
        daemon = spawn()  # untagged, no group recorded: only the cgroup knows it
        assert join_cgroup(folder, daemon.pid)
        started = RunStarted(execution_id="e", workflow="w", cgroup=str(folder))
        end_leftovers([started], os.getuid())
        assert daemon.wait(2) == -9
    finally:
        procs.remove_cgroup(folder)
