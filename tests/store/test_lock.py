"""The index lock: every operation waits for it, and gives up with StoreError."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from jupyter_workflows.errors import StoreError
from jupyter_workflows.store import ExecutionStore
from jupyter_workflows.store.lock import IndexLock


def test_an_operation_times_out_while_another_holds_the_lock(tmp_path: Path) -> None:
    store = ExecutionStore(tmp_path, lock_timeout=0.2)
    store.journals_dir.mkdir()  # something recorded: reads take the lock
    with IndexLock(tmp_path / "index.lock"), pytest.raises(StoreError, match="timed out"):
        store.history()


def test_an_operation_waits_for_the_lock(tmp_path: Path) -> None:
    store = ExecutionStore(tmp_path, lock_timeout=10)
    store.journals_dir.mkdir()
    lock = IndexLock(tmp_path / "index.lock")
    lock.acquire()
    timer = threading.Timer(0.3, lock.release)
    timer.start()
    started = time.monotonic()
    assert store.history() == []
    assert time.monotonic() - started >= 0.25
    timer.join()
