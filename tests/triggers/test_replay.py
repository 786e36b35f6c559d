"""The replay record on real files, from one process and from several at once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from jupyter_workflows.errors import StoreError
from jupyter_workflows.store.lock import IndexLock
from jupyter_workflows.triggers.replay import PURGE_EVERY, ReplayRecord


class Clock:
    def __init__(self, now: float = 1_000_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


def claim(record: ReplayRecord, *keys: str, run: str, until: float) -> dict | None:
    return record.claim(keys, execution_id=run, workflow="w", expires=until)


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines()


def test_a_claimed_key_is_answered_until_it_expires(tmp_path: Path) -> None:
    clock = Clock()
    path = tmp_path / "webhooks" / "deliveries.jsonl"
    record = ReplayRecord(path, clock=clock)
    assert claim(record, "/h d1", "signature aa", run="e1", until=clock.now + 10) is None
    # Any one of the keys is enough: a new delivery id with the same signature is a repeat.
    seen = claim(record, "/h d2", "signature aa", run="e2", until=clock.now + 10)
    assert seen == {"key": "signature aa", "execution_id": "e1", "workflow": "w",
                    "expires": clock.now + 10}  # fmt: skip
    assert "/h d2" not in path.read_text()  # a repeat writes nothing
    clock.now += 10
    assert claim(record, "signature aa", run="e3", until=clock.now + 10) is None
    # What one server wrote, a server started later (a restart) knows.
    restarted = ReplayRecord(path, clock=clock)
    assert claim(restarted, "signature aa", run="e4", until=0)["execution_id"] == "e3"


def test_a_release_forgets_only_the_claims_of_its_run(tmp_path: Path) -> None:
    clock = Clock()
    path = tmp_path / "deliveries.jsonl"
    first, second = ReplayRecord(path, clock=clock), ReplayRecord(path, clock=clock)
    assert claim(first, "k", run="e1", until=clock.now + 60) is None
    second.release(["k"], "other-run")  # not its claim: kept
    assert claim(second, "k", run="e2", until=clock.now + 60)["execution_id"] == "e1"
    first.release(["k"], "e1")
    assert claim(second, "k", run="e2", until=clock.now + 60) is None
    assert claim(first, "k", run="e3", until=clock.now + 60)["execution_id"] == "e2"


def test_the_file_is_compacted_and_other_processes_follow_it(tmp_path: Path) -> None:
    clock = Clock()
    path = tmp_path / "deliveries.jsonl"
    writer = ReplayRecord(path, clock=clock, min_lines=50)
    reader = ReplayRecord(path, clock=clock, min_lines=50)

    def expire_a_batch(batch: int) -> None:
        for n in range(60):
            claim(writer, f"old-{batch}-{n}", run="e", until=clock.now + 1)
        clock.now += PURGE_EVERY + 1  # all of them expired, and forgotten within a minute
        claim(writer, f"new-{batch}", run="n", until=clock.now + 1000)  # and a rewrite
        assert len(lines(path)) < 50, len(lines(path))

    expire_a_batch(0)
    assert claim(reader, "live", run="kept", until=clock.now + 1000) is None
    assert claim(reader, "dropped", run="unqueued", until=clock.now + 1000) is None
    seen_inode = path.stat().st_ino
    writer.release(["dropped"], "unqueued")  # gone from the next file
    # Rewrites while the reader looks away, until the file has the inode the reader saw again
    # (file systems reuse a freed inode at once): only its first line tells the files apart.
    for batch in range(1, 6):
        expire_a_batch(batch)
        if path.stat().st_ino == seen_inode:
            break
    assert json.loads(lines(path)[0]).keys() == {"replay_record"}
    # The reader read an older file: it reads this one whole, not from its old offset.
    assert claim(reader, "live", run="x", until=0)["execution_id"] == "kept"
    assert claim(reader, "dropped", run="retried", until=clock.now + 1000) is None
    assert claim(reader, f"new-{batch}", run="x", until=0)["execution_id"] == "n"
    assert claim(reader, f"old-{batch}-59", run="again", until=clock.now + 1) is None  # expired


def test_a_torn_line_is_skipped_and_the_next_claim_starts_on_a_new_line(tmp_path: Path) -> None:
    clock = Clock()
    path = tmp_path / "deliveries.jsonl"
    assert claim(ReplayRecord(path, clock=clock), "before", run="e1", until=clock.now + 60) is None
    with open(path, "a") as file:
        file.write('{"key": "torn", "execu')  # a server killed mid-write
    assert claim(ReplayRecord(path, clock=clock), "after", run="e2", until=clock.now + 60) is None
    fresh = ReplayRecord(path, clock=clock)
    assert claim(fresh, "before", run="x", until=0)["execution_id"] == "e1"
    assert claim(fresh, "after", run="x", until=0)["execution_id"] == "e2"
    assert claim(fresh, "torn", run="e3", until=clock.now + 60) is None


def test_delivery_ids_recorded_before_entries_expired_are_still_honoured(tmp_path: Path) -> None:
    path = tmp_path / "deliveries.jsonl"
    path.write_text(json.dumps({"key": "/h d-1", "execution_id": "e1", "workflow": "w"}) + "\n")
    clock = Clock()
    record = ReplayRecord(path, clock=clock)
    assert claim(record, "/h d-1", run="e2", until=clock.now + 60)["execution_id"] == "e1"
    clock.now += 86400 + 1
    assert claim(record, "/h d-1", run="e2", until=clock.now + 60) is None


def test_a_held_lock_is_a_store_error_not_a_guess(tmp_path: Path) -> None:
    path = tmp_path / "deliveries.jsonl"
    record = ReplayRecord(path, lock_timeout=0.2)
    with IndexLock(tmp_path / "deliveries.lock"), pytest.raises(StoreError, match="timed out"):
        claim(record, "k", run="e1", until=time.time() + 60)
    assert claim(record, "k", run="e1", until=time.time() + 60) is None


CLAIMER = """
import json, os, sys, time
from pathlib import Path
from jupyter_workflows.triggers.replay import ReplayRecord
path, go, me = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
record = ReplayRecord(path)
while not go.exists():
    time.sleep(0.001)
won = [k for k in map(str, range(40))
       if record.claim([k], execution_id=me, workflow="w", expires=time.time() + 60) is None]
print(json.dumps(won))
"""


def test_processes_claiming_the_same_keys_at_once_win_each_key_once(tmp_path: Path) -> None:
    path, go = tmp_path / "webhooks" / "deliveries.jsonl", tmp_path / "go"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    procs = [
        subprocess.Popen([sys.executable, "-c", CLAIMER, str(path), str(go), f"p{n}"],
                         stdout=subprocess.PIPE, text=True, env=env)
        for n in range(4)
    ]  # fmt: skip
    time.sleep(0.5)  # let them all start and wait
    go.touch()
    won = [json.loads(proc.communicate(timeout=60)[0]) for proc in procs]
    assert all(proc.returncode == 0 for proc in procs)
    assert sorted(key for keys in won for key in keys) == sorted(map(str, range(40)))
    entries = [json.loads(line) for line in lines(path)[1:]]
    assert len(entries) == 40 and len({e["key"] for e in entries}) == 40
