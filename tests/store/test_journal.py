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
