"""engine/sync.py: the loop a plain process runs the engine on waits for child processes on
pidfds (Python < 3.12 otherwise starts a thread per child), and leaves asyncio as it found it."""

from __future__ import annotations

import asyncio
import os
import sys
import threading
import warnings

import pytest

from jupyter_workflows.engine.sync import _pidfds_work, run_sync

needs_watchers = pytest.mark.skipif(
    sys.version_info >= (3, 12) or not _pidfds_work(),
    reason="asyncio waits on pidfds by itself from 3.12; no pidfds here",
)


async def _spawn(count: int) -> list[int]:
    codes = []
    for code in range(count):
        process = await asyncio.create_subprocess_exec("/bin/sh", "-c", f"exit {code}")
        codes.append(await process.wait())
    return codes


def _watcher() -> object:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return asyncio.get_child_watcher()


@needs_watchers
def test_children_are_waited_without_a_thread_each(monkeypatch) -> None:
    started: list[str] = []
    real_start = threading.Thread.start

    def counting_start(thread: threading.Thread) -> None:
        started.append(thread.name)
        real_start(thread)

    monkeypatch.setattr(threading.Thread, "start", counting_start)
    assert run_sync(lambda: _spawn(20)) == list(range(20))
    assert [name for name in started if "waitpid" in name] == []


@needs_watchers
def test_the_process_watcher_is_given_back_after_the_run() -> None:
    before = _watcher()
    seen = []

    async def look() -> None:
        seen.append(type(_watcher()).__name__)
        await _spawn(1)

    run_sync(look)
    assert seen == ["PidfdChildWatcher"]
    assert _watcher() is before
    # and plain asyncio still spawns with it afterwards
    assert asyncio.run(_spawn(2)) == [0, 1]


def test_a_failing_child_and_a_missing_program_are_reported_as_usual() -> None:
    async def spawn_missing() -> None:
        await asyncio.create_subprocess_exec(os.devnull + "/nope")

    with pytest.raises(OSError):
        run_sync(spawn_missing)
    assert run_sync(lambda: _spawn(3)) == [0, 1, 2]
