"""JournalWriter and read_journal: one line per event, tolerant reading."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from jupyter_workflows.errors import StoreError
from jupyter_workflows.execution.events import OutputLine, RunStarted
from jupyter_workflows.store.journal import JournalWriter, read_events, read_journal


def output(line: str) -> OutputLine:
    return OutputLine(execution_id="x", task_id="t", attempt=1, stream="stdout", line=line)


def test_each_event_is_one_line_with_increasing_seq(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "dir" / "x.jsonl"
    writer = JournalWriter(path)
    writer(RunStarted(execution_id="x", workflow="wf", tasks=[{"id": "t"}]))
    writer(output("héllo\nworld"))  # non-ASCII kept as is, newline escaped inside the line
    writer.close()
    lines = path.read_bytes().splitlines()
    assert len(lines) == 2
    first, second = (json.loads(line) for line in lines)
    assert (first["seq"], first["kind"], first["workflow"]) == (1, "run_started", "wf")
    assert (second["seq"], second["line"]) == (2, "héllo\nworld")
    assert "héllo".encode() in lines[1]


def test_unserialisable_values_are_written_as_strings(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    with JournalWriter(path) as writer:
        writer(RunStarted(execution_id="x", workflow="wf", tasks=[{"id": "t", "when": object}]))
    assert read_journal(path)[0]["tasks"][0]["when"] == str(object)


def test_close_is_idempotent_and_writing_after_close_fails(tmp_path: Path) -> None:
    writer = JournalWriter(tmp_path / "x.jsonl")
    writer(output("a"))
    writer.close()
    writer.close()
    with pytest.raises(StoreError, match="closed"):
        writer(output("b"))


def test_read_journal_skips_a_partial_last_line(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    with JournalWriter(path) as writer:
        writer(output("a"))
        writer(output("b"))
    with open(path, "ab") as handle:
        handle.write(b'{"seq":3,"kind":"outp')
    assert [d["line"] for d in read_journal(path)] == ["a", "b"]
    assert [type(e).__name__ for e in read_events(path)] == ["OutputLine", "OutputLine"]


def test_reopening_continues_seq_and_ends_a_cut_off_line(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    with JournalWriter(path) as writer:
        writer(output("a"))
    with open(path, "ab") as handle:
        handle.write(b'{"seq":2,"kind":"outp')  # the writer died mid-line
    with JournalWriter(path) as writer:
        assert writer.seq == 1
        writer(output("b"))
    entries = read_journal(path)
    assert [(d["seq"], d["line"]) for d in entries] == [(1, "a"), (2, "b")]


def test_writing_costs_microseconds(tmp_path: Path) -> None:
    events = [output(f"line {i}") for i in range(5000)]
    with JournalWriter(tmp_path / "x.jsonl") as writer:
        started = time.perf_counter()
        for event in events:
            writer(event)
        per_event = (time.perf_counter() - started) / len(events)
    # Typically 3-6 µs here; the bound only catches a flush or fsync per event.
    assert per_event < 100e-6


# A real short write followed by a failing one, without root: RLIMIT_FSIZE makes the kernel
# write up to the limit and then refuse (EFBIG), as a disk filling up mid-line does (ENOSPC).
_FILL_UP = """
import json, resource, signal, sys
from jupyter_workflows.errors import StoreWriteFailed
from jupyter_workflows.execution.events import OutputLine
from jupyter_workflows.store.journal import JournalWriter

signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of being killed
resource.setrlimit(resource.RLIMIT_FSIZE, (2000, 2000))
writer = JournalWriter(sys.argv[1])
line = OutputLine(execution_id="x", task_id="t", attempt=1, stream="stdout", line="y" * 77)
written = 0
try:
    while True:
        writer(line)
        written += 1
except StoreWriteFailed as exc:
    failure = {"written": written, "errno": exc.errno, "message": str(exc)}
try:
    writer(line)
    failure["refused_after"] = False
except StoreWriteFailed:
    failure["refused_after"] = True
writer.close()
print(json.dumps(failure))
"""


def test_a_write_that_fails_mid_line_leaves_whole_lines_and_names_the_file(
    tmp_path: Path,
) -> None:
    import errno
    import subprocess
    import sys

    path = tmp_path / "x.jsonl"
    done = subprocess.run(
        [sys.executable, "-c", _FILL_UP, str(path)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    failure = json.loads(done.stdout)
    assert failure["errno"] == errno.EFBIG
    assert failure["message"].startswith(f"cannot write {path}: [Errno {errno.EFBIG}]")
    assert failure["refused_after"], "a failed writer must not leave a gap by writing on"
    data = path.read_bytes()
    assert data.endswith(b"\n"), "the cut-off part of the last line was left in the journal"
    assert [e["seq"] for e in read_journal(path)] == list(range(1, failure["written"] + 1))
    # Reopened once there is room again, the numbering goes on after the last whole line.
    with JournalWriter(path) as writer:
        writer(output("after"))
    assert read_journal(path)[-1]["seq"] == failure["written"] + 1


def test_a_journal_that_cannot_be_created_is_a_store_write_failure(tmp_path: Path) -> None:
    from jupyter_workflows.errors import StoreWriteFailed

    (tmp_path / "journals").write_text("a file where the folder must be")
    with pytest.raises(StoreWriteFailed) as caught:
        JournalWriter(tmp_path / "journals" / "x.jsonl")
    assert str(tmp_path / "journals") in str(caught.value)
