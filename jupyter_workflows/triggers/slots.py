"""Durable cron slot state, shared by every scheduler process that uses one store.

Per workflow (keyed by its name, made safe for a file name) a small JSON file under
``<store>/schedules/`` holds the *mark*: the newest slot that has been handled (fired, skipped,
or given up by the catch-up policy). Everything at or before the mark is done.

Claiming a slot is atomic across processes: under an exclusive ``flock`` on the workflow's
lock file, a slot newer than the mark moves the mark to it (written to a temporary file,
fsync'd and ``os.replace``d) and the claim succeeds; any other claim of that slot, or of an
older one, fails. Schedulers handle slots oldest first, so this one high-water mark is a claim
per (workflow, scheduled time) with nothing to prune, and a restart reads where it stopped.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..errors import StoreError
from ..store.atomic import replace_json
from ..store.lock import IndexLock

SCHEDULES_DIR = "schedules"
LOCK_TIMEOUT = 10.0
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")


def slot_key(workflow_name: str) -> str:
    """A file-name-safe key for a workflow name; distinct names get distinct keys."""
    safe = _UNSAFE.sub("_", workflow_name)[:80].lstrip(".") or "_"
    if safe == workflow_name:
        return safe
    digest = hashlib.sha256(workflow_name.encode()).hexdigest()[:10]
    return f"{safe}-{digest}"


class SlotBook:
    """The marks of all scheduled workflows of one store (``store_dir`` is the store's
    directory, ``default_store_path(root)``); safe to use from several processes at once."""

    def __init__(self, store_dir: Path, *, lock_timeout: float = LOCK_TIMEOUT):
        self.dir = Path(store_dir) / SCHEDULES_DIR
        self.lock_timeout = lock_timeout

    def mark(self, workflow_name: str) -> float | None:
        """The newest handled slot of this workflow (epoch seconds), None when never scheduled."""
        return _mark_of(self._read(slot_key(workflow_name)))

    def begin(self, workflow_name: str, now: float) -> float:
        """The mark, set to ``now`` first when the workflow was never scheduled here.

        Slots before the first start are owed to nobody; slots after it are remembered even
        if the scheduler stops before the first one fires (so catch-up can find them).
        """
        key = slot_key(workflow_name)
        with self._locked(key):
            mark = _mark_of(self._read(key))
            if mark is not None:
                return mark
            self._write(key, _state(workflow_name, now, outcome="scheduling started"))
            return now

    def claim(
        self, workflow_name: str, slot: float, *, outcome: str, execution_id: str | None = None
    ) -> bool:
        """Take ``slot`` for this process: True once per (workflow, slot) across all processes.

        False when the slot (or a newer one) was already handled, here or by another
        scheduler: then do nothing with it. ``outcome`` and ``execution_id`` are kept for
        people reading the file.
        """
        key = slot_key(workflow_name)
        with self._locked(key):
            mark = _mark_of(self._read(key))
            if mark is not None and mark >= slot:
                return False
            self._write(key, _state(workflow_name, slot, outcome, execution_id))
            return True

    def _path(self, key: str) -> Path:
        return self.dir / f"{key}.json"

    def _locked(self, key: str) -> IndexLock:
        self.dir.mkdir(parents=True, exist_ok=True)
        return IndexLock(self.dir / f"{key}.lock", self.lock_timeout)

    def _read(self, key: str) -> dict[str, Any] | None:
        try:
            text = self._path(key).read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StoreError(f"cannot read the schedule state {self._path(key)}: {exc}") from exc
        try:
            state = json.loads(text)
        except ValueError as exc:  # only a hand edit gets here: writes are atomic
            raise StoreError(f"schedule state {self._path(key)} is not valid JSON: {exc}") from exc
        return state if isinstance(state, dict) else None

    def _write(self, key: str, state: dict[str, Any]) -> None:
        path = self._path(key)
        # Durable: the mark must survive a power cut (a lost one repeats a slot).
        replace_json(path, state, durable=True, indent=2)
        _fsync_dir(self.dir)


def _mark_of(state: dict[str, Any] | None) -> float | None:
    mark = state.get("mark") if state else None
    is_number = isinstance(mark, (int, float)) and not isinstance(mark, bool)
    return float(mark) if is_number else None  # type: ignore[arg-type]


def _state(name: str, mark: float, outcome: str, execution_id: str | None = None) -> dict[str, Any]:
    return {
        "workflow": name,
        "mark": mark,
        "mark_utc": datetime.fromtimestamp(mark, timezone.utc).isoformat(),
        "outcome": outcome,
        "execution_id": execution_id,
        "by": {"pid": os.getpid(), "host": socket.gethostname()},
        "updated_at": time.time(),
    }


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
