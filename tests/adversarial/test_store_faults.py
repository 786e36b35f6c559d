"""Store faults (issue 13): a store that cannot be used, and an index that cannot be opened.

A store the runner cannot use (a file where a folder must be, a lock that is a folder, a store
that is not writable) stops ``workflow run`` before any task starts, with one line naming the
path and what to do and exit code 2; every reader (``history``, ``status``, ``monitor``, the
magics) says the same. The tests run as root in CI containers, where a mode-0555 folder is
still writable: "not writable" is made real with ``chattr +i`` (an immutable folder) and with a
read-only bind mount, each skipped where the container does not allow it.

A broken ``index.duckdb`` (zero bytes, garbage, cut short, damaged blocks) is
rebuilt from the journals on the next read, losing nothing: the journals are the record.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell

from jupyter_workflows.engine import WorkflowOrchestrator
from jupyter_workflows.project import default_store_path
from tests.conftest import cli, write_workflow

STORE = Path("workflows") / ".executions"


def touching(marker: Path) -> dict[str, Any]:
    """A workflow whose only task creates ``marker``: it exists iff a task ran."""
    return {"name": "toucher", "tasks": [{"id": "touch", "type": "shell",
                                          "command": f"touch '{marker}'"}]}  # fmt: skip


def _chattr(flag: str, path: Path) -> bool:
    try:
        done = subprocess.run(["chattr", flag, str(path)], capture_output=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return False
    return done.returncode == 0


def _mount(*args: str) -> bool:
    try:
        done = subprocess.run(["mount", *args], capture_output=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return False
    return done.returncode == 0


def _umount(path: Path) -> None:
    subprocess.run(["umount", "-l", str(path)], capture_output=True, timeout=10)


# Each fault sets up the project at ``root`` (a run may already be recorded in its store) and
# returns the path the message must name; ``undo`` collects what must be reverted afterwards.
Fault = Callable[[Path, list[Callable[[], None]]], Path]


def journals_is_a_file(root: Path, undo: list[Callable[[], None]]) -> Path:
    (root / STORE).mkdir(parents=True)
    (root / STORE / "journals").write_text("not a folder")
    return root / STORE / "journals"


def storage_under_a_file(root: Path, undo: list[Callable[[], None]]) -> Path:
    (root / "notes.txt").write_text("a file, not a folder")
    (root / "workflows").mkdir()
    (root / "workflows" / "config.json").write_text(json.dumps({"storagePath": "notes.txt/runs"}))
    return root / "notes.txt"


def lock_is_a_folder(root: Path, undo: list[Callable[[], None]]) -> Path:
    (root / STORE / "index.lock").mkdir(parents=True)
    return root / STORE / "index.lock"


def index_is_a_folder(root: Path, undo: list[Callable[[], None]]) -> Path:
    (root / STORE / "index.duckdb").mkdir(parents=True)
    return root / STORE / "index.duckdb"


def _record_one_run(root: Path) -> None:
    WorkflowOrchestrator(root).execute({"name": "earlier", "tasks": [
        {"id": "t", "type": "shell", "command": "echo before"}]})  # fmt: skip
    assert cli(root, "history").returncode == 0  # the index exists and knows it


def immutable_store(root: Path, undo: list[Callable[[], None]]) -> Path:
    """``chattr +i`` on the store folder: nothing can be created in it, not even by root."""
    _record_one_run(root)
    store = root / STORE
    if not _chattr("+i", store):
        pytest.skip("chattr +i is not permitted here")
    undo.append(lambda: _chattr("-i", store))
    return store


def read_only_mount(root: Path, undo: list[Callable[[], None]]) -> Path:
    """The store folder bind-mounted onto itself read-only."""
    _record_one_run(root)
    store = root / STORE
    if not _mount("--bind", str(store), str(store)):
        pytest.skip("bind mounts are not permitted here")
    undo.append(lambda: _umount(store))
    if not _mount("-o", "remount,bind,ro", str(store)):
        pytest.skip("read-only remounts are not permitted here")
    return store


FAULTS: dict[str, tuple[Fault, str]] = {
    # name: (set-up, a word of what to do that the message must contain)
    "journals-is-a-file": (journals_is_a_file, "not a folder"),
    "storage-under-a-file": (storage_under_a_file, "not a folder"),
    "lock-is-a-folder": (lock_is_a_folder, "remove it"),
    "index-is-a-folder": (index_is_a_folder, "remove it"),
    "immutable-store": (immutable_store, "not writable"),
    "read-only-mount": (read_only_mount, "read-only file system"),
}


@pytest.fixture(params=sorted(FAULTS))
def broken(request: pytest.FixtureRequest, project: Path) -> Iterator[tuple[Path, str]]:
    """A project whose store cannot be used; yields (the path to name, a hint word)."""
    setup, hint = FAULTS[request.param]
    undo: list[Callable[[], None]] = []
    try:
        yield setup(project, undo), hint
    finally:
        for step in reversed(undo):
            step()


def one_clean_line(stderr: str) -> str:
    """The one line a user sees: no traceback, nothing else."""
    assert "Traceback" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error: "), stderr
    return lines[0]


def test_run_stops_before_any_task_with_one_line_and_exit_2(
    project: Path, broken: tuple[Path, str]
) -> None:
    where, hint = broken
    marker = project.parent / "task-ran"
    write_workflow(project, touching(marker))
    done = cli(project, "run", "wf.json")
    line = one_clean_line(done.stderr)
    assert done.returncode == 2, done
    assert str(where) in line and hint in line, line
    assert not marker.exists(), "a task ran although the run cannot be recorded"


@pytest.mark.parametrize(
    "command", [["history"], ["status", "deadbeef"], ["monitor"], ["history", "--json"]]
)
def test_readers_say_the_same_with_exit_2(
    project: Path, broken: tuple[Path, str], command: list[str]
) -> None:
    where, hint = broken
    done = cli(project, *command)
    line = one_clean_line(done.stderr)
    assert done.returncode == 2, done
    assert str(where) in line and hint in line, line


def test_magics_say_the_same_and_run_nothing(
    project: Path, broken: tuple[Path, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    where, hint = broken
    marker = project.parent / "task-ran"
    write_workflow(project, touching(marker))
    monkeypatch.chdir(project)
    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "jupyter_workflows.jupyter.magics")
    for line in ("run wf.json", "history", "status deadbeef", "monitor"):
        with pytest.raises(UsageError) as caught:
            shell.run_line_magic("workflow", line)
        message = str(caught.value)
        assert str(where) in message and hint in message, (line, message)
    assert not marker.exists()


# -- an index that cannot be opened is rebuilt from the journals ---------------------------


BLOCKS = (3 * 4096, 256 * 1024)  # DuckDB: 3 header blocks of 4 KiB, then 256 KiB blocks


def _flipped(data: bytes, offsets: Iterable[int]) -> bytes:
    """``data`` with the checksum at the start of each block at ``offsets`` inverted."""
    damaged = bytearray(data)
    for offset in offsets:
        damaged[offset : offset + 8] = bytes(255 - b for b in damaged[offset : offset + 8])
    return bytes(damaged)


def _damage_blocks(index: Path) -> None:
    """Every block fails its checksum: the index cannot even be opened."""
    data = index.read_bytes()
    index.write_bytes(_flipped(data, range(*BLOCKS[:1], len(data), BLOCKS[1])))


def _damage_table_blocks(index: Path) -> None:
    """Every block but the catalog's fails its checksum: the index opens, and the first read
    of a table fails (the damage is found in the middle of a session, not on opening)."""
    import duckdb

    data = index.read_bytes()
    blocks = range(BLOCKS[0], len(data), BLOCKS[1])
    trial = index.with_name("trial.duckdb")
    catalog = []
    for offset in blocks:  # which blocks does opening read? damage each alone and see
        trial.write_bytes(_flipped(data, [offset]))
        try:
            duckdb.connect(str(trial)).close()
        except duckdb.Error:
            catalog.append(offset)
    trial.unlink()
    index.write_bytes(_flipped(data, [b for b in blocks if b not in catalog]))
    duckdb.connect(str(index)).close()  # opens: the damage is in the tables


DAMAGE: dict[str, Callable[[Path], None]] = {
    "zero-bytes": lambda index: index.write_bytes(b""),
    "garbage": lambda index: index.write_bytes(os.urandom(300_000)),
    "cut-short": lambda index: index.write_bytes(index.read_bytes()[:20_000]),
    "header-only": lambda index: index.write_bytes(index.read_bytes()[: 3 * 4096]),
    "damaged-blocks": _damage_blocks,
    "damaged-table-blocks": _damage_table_blocks,
}


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_a_broken_index_is_rebuilt_from_the_journals_on_the_next_read(
    project: Path, damage: str
) -> None:
    orchestrator = WorkflowOrchestrator(project)
    for n in range(3):
        say = {"id": "say", "type": "shell", "command": f"echo line-{n}; exit {n % 2}"}
        orchestrator.execute({"name": f"wf{n}", "tasks": [say]}, raise_on_failure=False)
    before = cli(project, "history", "--json")
    assert before.returncode == 0, before.stderr
    first = json.loads(before.stdout)[0]["id"]
    status_before = json.loads(cli(project, "status", first, "--json").stdout)
    index = default_store_path(project) / "index.duckdb"
    assert list((index.parent / "journals" / "done").glob("*.jsonl")), "journals archived"

    DAMAGE[damage](index)
    after = cli(project, "history", "--json")

    assert after.returncode == 0, after.stderr
    assert "Traceback" not in after.stderr
    assert json.loads(after.stdout) == json.loads(before.stdout)
    status_after = cli(project, "status", first, "--json")
    assert json.loads(status_after.stdout) == status_before
    assert "rebuilt" in after.stderr, after.stderr  # the user is told, once
    assert "rebuilt" not in status_after.stderr
