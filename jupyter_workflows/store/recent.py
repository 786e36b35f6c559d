"""Recent runs: a small file per workflow with its last finished runs, kept by their runners.

The alert rules need a workflow's last N finished statuses and its recent successful durations
after every run. Reading them from the index would make every runner open DuckDB; instead the
runner that ends a run (``RecentRunsRecorder``, an event sink placed right after the journal)
adds one line to ``<store>/recent/<workflow>.json``, and crash detection adds the runs it
ends. Each file holds the workflow's last ``KEEP`` finished runs, oldest first::

    {"workflow": "etl", "complete": true,
     "runs": [{"id": "...", "status": "failed", "started_at": 1.7e9, "duration_ms": 812.0}]}

``complete`` is false when the file was started in a store that had a history before the
``recent/`` folder was made (``recent/.fresh`` marks a folder made in a store without one):
runs recorded before the file existed may be missing, and a reader seeds the file from the
index once (``seed``). Everything is derived from the journals: the folder can be deleted at
any time. Writes replace the file whole under an ``flock`` on ``recent/.lock``. No duckdb.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..execution.events import Event, RunEnded, RunStarted
from .atomic import replace_json
from .lock import IndexLock

FOLDER = "recent"
KEEP = 200
FINISHED = frozenset({"succeeded", "failed", "timed_out", "cancelled", "crashed"})
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")


@dataclass(frozen=True)
class RecentRun:
    id: str
    status: str
    started_at: float
    duration_ms: float | None

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "status": self.status, "started_at": self.started_at,
                "duration_ms": self.duration_ms}  # fmt: skip


@dataclass
class RecentRuns:
    """One workflow's last finished runs, oldest first; the reads the alert rules make."""

    workflow: str
    runs: list[RecentRun]
    complete: bool = True

    def finished_statuses(self, workflow: str, *, up_to: str, limit: int) -> list[str]:
        """Statuses of the last ``limit`` finished runs up to ``up_to`` (included), newest
        first (the same answer as ``Reads.finished_statuses``)."""
        runs = self._up_to(up_to, include=True)
        return [r.status for r in reversed(runs)][:limit]

    def success_durations(self, workflow: str, *, before: str, limit: int) -> list[float]:
        """Durations (ms) of the last ``limit`` successful runs started before ``before``,
        newest first."""
        runs = self._up_to(before, include=False)
        done = [r.duration_ms for r in reversed(runs) if r.status == "succeeded"]
        return [d for d in done if d is not None][:limit]

    def covers(self, execution_id: str, window: int) -> bool:
        """Whether this file can answer for ``execution_id`` over ``window`` runs: it is
        complete (or holds ``window`` runs before it) and the run is in it."""
        ids = [r.id for r in self.runs]
        if execution_id not in ids:
            return False
        return self.complete or ids.index(execution_id) >= window

    def _up_to(self, execution_id: str, *, include: bool) -> list[RecentRun]:
        for position, run in enumerate(self.runs):
            if run.id == execution_id:
                return self.runs[: position + 1 if include else position]
        return []


def recent_path(store_path: Path, workflow: str) -> Path:
    """The file of ``workflow``: its name made safe, plus a short hash so names never clash."""
    digest = hashlib.sha256(workflow.encode("utf-8", "replace")).hexdigest()[:10]
    return Path(store_path) / FOLDER / f"{_UNSAFE.sub('_', workflow)[:60]}-{digest}.json"


def read_recent(store_path: Path, workflow: str) -> RecentRuns | None:
    """The workflow's recent runs; None when there is no (readable) file."""
    try:
        data = json.loads(recent_path(store_path, workflow).read_text("utf-8"))
        runs = [RecentRun(str(r["id"]), str(r["status"]), float(r["started_at"]),
                          None if r.get("duration_ms") is None else float(r["duration_ms"]))
                for r in data["runs"]]  # fmt: skip
        return RecentRuns(workflow, runs, bool(data.get("complete", True)))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def add_run(store_path: Path, workflow: str, run: RecentRun) -> None:
    """Add (or replace) one finished run in the workflow's file."""
    if run.status not in FINISHED:
        return
    folder = Path(store_path) / FOLDER
    if not folder.is_dir():
        folder.mkdir(parents=True, exist_ok=True)
        if not _has_history(store_path, run.id):
            # Every run from now on is recorded here: each file is complete from its start.
            (folder / ".fresh").touch()
    with _locked(store_path):
        current = read_recent(store_path, workflow)
        if current is None:
            # A store with a history may hold runs of this workflow from before this file.
            current = RecentRuns(workflow, [], complete=(folder / ".fresh").exists())
        runs = [r for r in current.runs if r.id != run.id] + [run]
        _write(store_path, RecentRuns(workflow, runs, current.complete))


def seed(store_path: Path, workflow: str, runs: Iterable[RecentRun]) -> RecentRuns:
    """Replace the workflow's file with ``runs`` (from the index), keeping any run recorded
    since that the index did not have yet; the file is complete from now on."""
    with _locked(store_path):
        merged = {r.id: r for r in runs}
        current = read_recent(store_path, workflow)
        for run in current.runs if current else []:
            merged.setdefault(run.id, run)
        recent = RecentRuns(workflow, list(merged.values()), complete=True)
        _write(store_path, recent)
        return recent


def forget(store_path: Path, execution_ids: Iterable[str]) -> None:
    """Drop removed executions (``workflow cleanup``) from every file."""
    doomed = set(execution_ids)
    folder = Path(store_path) / FOLDER
    if not doomed or not folder.is_dir():
        return
    with _locked(store_path):
        for path in folder.glob("*.json"):
            with contextlib.suppress(OSError, ValueError, KeyError):
                data = json.loads(path.read_text("utf-8"))
                kept = [r for r in data["runs"] if r["id"] not in doomed]
                if len(kept) != len(data["runs"]):
                    _replace(path, {**data, "runs": kept})


def record_journal_end(store_path: Path, events: Iterable[Event]) -> None:
    """Add the run a journal's events describe (once it has ended): crash detection's way in."""
    started = ended = None
    execution_id = ""
    for event in events:
        if isinstance(event, RunStarted):
            started, execution_id = event, event.execution_id
        elif isinstance(event, RunEnded):
            ended = event
    if started is not None and ended is not None:
        add_run(store_path, started.workflow, _run(execution_id, started, ended))


class RecentRunsRecorder:
    """Event sink: when a run ends, adds it to its workflow's recent runs. Never raises (the
    file is a convenience derived from the journal, which stays the record)."""

    def __init__(self, store_path: Path):
        self.store_path = Path(store_path)
        self._started: dict[str, RunStarted] = {}

    def __call__(self, event: Event) -> None:
        if isinstance(event, RunStarted):
            self._started[event.execution_id] = event
        elif isinstance(event, RunEnded):
            started = self._started.pop(event.execution_id, None)
            if started is None:
                return
            with contextlib.suppress(Exception):
                add_run(self.store_path, started.workflow, _run(event.execution_id, started, event))


def _has_history(store_path: Path, execution_id: str) -> bool:
    store = Path(store_path)
    journals = store / "journals"
    if (store / "index.duckdb").exists() or (journals / "done").exists():
        return True
    with contextlib.suppress(OSError), os.scandir(journals) as entries:
        return any(e.name.endswith(".jsonl") and e.name != f"{execution_id}.jsonl" for e in entries)
    return False


def _run(execution_id: str, started: RunStarted, ended: RunEnded) -> RecentRun:
    duration = round((ended.at - started.at) * 1000.0, 3)
    return RecentRun(execution_id, ended.status, started.at, duration)


def _write(store_path: Path, recent: RecentRuns) -> None:
    runs = sorted(recent.runs, key=lambda r: r.started_at)[-KEEP:]
    data = {"workflow": recent.workflow, "complete": recent.complete,
            "runs": [r.to_dict() for r in runs]}  # fmt: skip
    recent.runs = runs
    _replace(recent_path(store_path, recent.workflow), data)


def _replace(path: Path, data: dict[str, Any]) -> None:
    # Replaced whole, never edited in place: a reader sees the old file or the new one.
    replace_json(path, data, separators=(",", ":"))


@contextlib.contextmanager
def _locked(store_path: Path) -> Iterator[None]:
    folder = Path(store_path) / FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    with IndexLock(folder / ".lock", timeout=10.0):
        yield
