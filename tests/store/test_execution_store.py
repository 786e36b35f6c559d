"""ExecutionStore over real journals and a real DuckDB file."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from jupyter_workflows.errors import AmbiguousExecutionId, ExecutionNotFound, StoreError
from jupyter_workflows.execution.events import OutputLine, RunEnded, TaskEnded
from jupyter_workflows.execution.states import State
from jupyter_workflows.store import ExecutionStore

from .helpers import T0, TaskPlan, run_events, write_events, write_run

DAY = 86400.0


def test_nothing_is_created_until_needed(tmp_path) -> None:
    store = ExecutionStore(tmp_path / "executions")
    assert store.journal_path("abc") == tmp_path / "executions" / "journals" / "abc.jsonl"
    assert not store.path.exists() and not store.exists()
    write_events(store, run_events("r1", start=T0), "r1")
    assert store.exists() and not store.index_path.exists()
    assert [r.id for r in store.history()] == ["r1"]
    assert store.index_path.exists()


def test_reads_of_a_store_where_nothing_was_recorded_create_nothing(tmp_path) -> None:
    store = ExecutionStore(tmp_path / "executions")
    store.path.mkdir()
    (store.path / "alerts.jsonl").write_text("")  # written by others; not a history yet
    before = sorted(p.name for p in store.path.iterdir())
    assert store.history() == [] and store.workflow_metrics() == [] and not store.task_metrics()
    with store.snapshot() as view:
        assert view.history() == []
    store.refresh()
    assert store.query("SELECT count(*) FROM executions") == (["count_star()"], [(0,)])
    assert store.query_arrow("SELECT id FROM executions").num_rows == 0
    assert store.cleanup(datetime.now(timezone.utc), dry_run=True).executions == []
    assert store.cleanup(datetime.now(timezone.utc)).executions == []
    with pytest.raises(ExecutionNotFound):
        store.get_execution("abc")
    with pytest.raises(ExecutionNotFound):
        store.logs("abc")
    with pytest.raises(StoreError, match="read-only"):  # as on a real index
        store.query("DELETE FROM executions")
    assert sorted(p.name for p in store.path.iterdir()) == before


def test_history_is_newest_first_and_filters(store: ExecutionStore) -> None:
    write_run(store, "r1", workflow="etl", start=T0, tasks=[TaskPlan("a")])
    write_run(
        store,
        "r2",
        workflow="etl",
        start=T0 + DAY,
        status="failed",
        tasks=[TaskPlan("a"), TaskPlan("b", status="failed", exit_code=2)],
    )
    write_run(store, "r3", workflow="report", start=T0 + 2 * DAY, trigger="cron")
    write_run(store, "r4", workflow="etl", start=T0 + 3 * DAY, tasks=[TaskPlan("a")])

    assert [s.id for s in store.history()] == ["r4", "r3", "r2", "r1"]
    assert [s.id for s in store.history(limit=2)] == ["r4", "r3"]
    assert [s.id for s in store.history(limit=None, workflow="etl")] == ["r4", "r2", "r1"]
    assert [s.id for s in store.history(status="failed")] == ["r2"]
    since = datetime.fromtimestamp(T0 + DAY, tz=timezone.utc)
    assert [s.id for s in store.history(since=since)] == ["r4", "r3", "r2"]
    assert [s.id for s in store.history(workflow="etl", since=since + timedelta(hours=1))] == ["r4"]

    r2 = store.history(status="failed")[0]
    assert (r2.workflow, r2.task_count, r2.failed_tasks) == ("etl", 2, 1)
    assert r2.started_at == datetime.fromtimestamp(T0 + DAY, tz=timezone.utc)
    assert r2.duration_ms == pytest.approx(2000)
    assert store.history(workflow="report")[0].trigger == "cron"
    assert r2.to_dict()["started_at"] == "2023-11-15T22:13:20+00:00"


def test_get_execution_by_id_and_unambiguous_prefix(store: ExecutionStore) -> None:
    write_run(store, "abc123", tasks=[TaskPlan("a"), TaskPlan("b")])
    write_run(store, "abd456", start=T0 + 10)
    assert store.get_execution("abc123").id == "abc123"
    assert store.get_execution("abc").id == "abc123"
    with pytest.raises(AmbiguousExecutionId) as info:
        store.get_execution("ab")
    assert info.value.matches == ["abc123", "abd456"]
    with pytest.raises(ExecutionNotFound):
        store.get_execution("zzz")
    with pytest.raises(ExecutionNotFound):
        store.get_execution("")


def test_an_exact_id_wins_over_longer_ids_it_prefixes(store: ExecutionStore) -> None:
    write_run(store, "run1")
    write_run(store, "run10")
    assert store.get_execution("run1").id == "run1"


def test_retries_show_as_attempts(store: ExecutionStore) -> None:
    write_run(
        store,
        "r",
        tasks=[TaskPlan("flaky", duration=3.0, attempts=3, result={"rows": 7}), TaskPlan("after")],
    )
    execution = store.get_execution("r")
    assert execution.status is State.SUCCEEDED
    assert list(execution.tasks) == ["flaky", "after"]  # by start time
    flaky = execution.task("flaky")
    assert [(a.number, a.status) for a in flaky.attempts] == [
        (1, State.FAILED),
        (2, State.FAILED),
        (3, State.SUCCEEDED),
    ]
    assert [a.exit_code for a in flaky.attempts] == [1, 1, 0]
    assert flaky.attempts[1].started_at == T0 + 1.0
    assert flaky.attempts[1].duration == pytest.approx(1.0)
    assert (flaky.started_at, flaky.ended_at) == (T0, T0 + 3.0)
    assert flaky.result == {"rows": 7}
    assert execution.ended_at == T0 + 4.0
    row = store.query(
        "SELECT attempts FROM task_runs WHERE execution_id = 'r' AND task_id = 'flaky'"
    )[1]
    assert row == [(3,)]


def test_a_run_in_progress_shows_running_tasks_and_attempts(store: ExecutionStore) -> None:
    events = run_events("r", tasks=[TaskPlan("a"), TaskPlan("b", attempts=2)], status=None)
    # Cut the run inside task b's second attempt.
    cut = next(
        i
        for i, e in enumerate(events)
        if getattr(e, "attempt", None) == 2 and type(e).__name__ == "AttemptEnded"
    )
    write_events(store, events[:cut], "r")
    execution = store.get_execution("r")
    assert execution.status is State.RUNNING and execution.ended_at is None
    assert execution.task("a").status is State.SUCCEEDED
    b = execution.task("b")
    assert b.status is State.RUNNING and b.ended_at is None
    assert [a.status for a in b.attempts] == [State.FAILED, State.RUNNING]


def test_declared_tasks_not_started_are_pending_with_their_dependencies(
    store: ExecutionStore,
) -> None:
    events = run_events("r", tasks=[TaskPlan("a")], status=None)
    events[0].tasks.append({"id": "later", "name": "Later", "depends_on": ["a"]})  # type: ignore[attr-defined]
    write_events(store, events, "r")
    later = store.get_execution("r").task("later")
    assert (later.status, later.name, later.depends_on) == (State.PENDING, "Later", ["a"])
    assert list(store.get_execution("r").tasks) == ["a", "later"]


def test_logs_are_ingested_incrementally(store: ExecutionStore) -> None:
    eid = "r"
    events = run_events(eid, tasks=[TaskPlan("a", lines=["one", "two", "three"])])
    split = next(i for i, e in enumerate(events) if isinstance(e, OutputLine)) + 2
    with store.open_journal(eid) as write:
        for event in events[:split]:
            write(event)
        assert [line.line for line in store.logs(eid)] == ["one", "two"]
        for event in events[split:]:
            write(event)
    store.refresh()
    store.refresh()
    lines = store.logs(eid)
    assert [line.line for line in lines] == ["one", "two", "three"]
    assert len({line.seq for line in lines}) == 3
    assert lines[0].task_id == "a" and lines[0].attempt == 1 and lines[0].stream == "stdout"
    assert lines[0].at == datetime.fromtimestamp(T0, tz=timezone.utc)
    assert [line.line for line in store.logs(eid, tail=2)] == ["two", "three"]
    assert store.logs(eid, task_id="other") == []
    assert store.get_execution(eid, logs=2).task("a").log_tail == ["two", "three"]
    assert store.get_execution(eid).task("a").log_tail == []


def test_a_partial_last_line_is_ignored_then_picked_up(store: ExecutionStore) -> None:
    events = run_events("r", tasks=[TaskPlan("a", lines=["x"])])
    *head, last = events
    path = write_events(store, head, "r")
    line = json.dumps({**last.to_dict(), "seq": len(head) + 1}) + "\n"
    with open(path, "a") as handle:
        handle.write(line[:25])
    assert store.get_execution("r").status is State.RUNNING
    with open(path, "a") as handle:
        handle.write(line[25:])
    assert store.get_execution("r").status is State.SUCCEEDED
    assert [line.line for line in store.logs("r")] == ["x"]


def test_unchanged_complete_journals_are_not_read_again(store: ExecutionStore) -> None:
    written = write_run(store, "r", tasks=[TaskPlan("a")])
    store.refresh()
    path = store.journal_location("r")
    assert path == store.journals_dir / "done" / written.name  # indexed and complete: archived
    # Corrupting a finished journal in place changes nothing: it is never read again.
    path.write_bytes(path.read_bytes().replace(b"succeeded", b"exploded!"))
    assert store.get_execution("r").status is State.SUCCEEDED
    # record() reads it on request.
    path.write_bytes(path.read_bytes().replace(b"exploded!", b"cancelled"))
    store.record("r")
    assert store.get_execution("r").status is State.CANCELLED


def test_record_ingests_one_journal(store: ExecutionStore) -> None:
    write_run(store, "r1")
    store.record("r1")
    store.record("missing")  # nothing to do
    rows = store.query("SELECT id, status FROM executions")[1]
    assert rows == [("r1", "succeeded")]
    with pytest.raises(StoreError):
        store.record("../escape")


def test_the_index_can_be_rebuilt_from_the_journals(store: ExecutionStore) -> None:
    write_run(store, "r1", tasks=[TaskPlan("a", lines=["l1", "l2"])])
    write_run(store, "r2", start=T0 + 5, status="failed", tasks=[TaskPlan("a", status="failed")])
    before = [s.to_dict() for s in store.history()]
    (store.path / "index.duckdb").unlink()
    assert [s.to_dict() for s in store.history()] == before
    assert [line.line for line in store.logs("r1")] == ["l1", "l2"]


def test_query_is_read_only(store: ExecutionStore) -> None:
    write_run(store, "r1", workflow="etl")
    columns, rows = store.query("SELECT id, workflow FROM executions WHERE workflow = ?", ["etl"])
    assert (columns, rows) == (["id", "workflow"], [("r1", "etl")])
    with pytest.raises(StoreError):
        store.query("DELETE FROM executions")
    with pytest.raises(StoreError):
        store.query("SELECT nope FROM nowhere")
    assert len(store.history()) == 1


def test_later_events_win(store: ExecutionStore) -> None:
    events = run_events("r", tasks=[TaskPlan("a")], status="succeeded")
    # A second TaskEnded for the same task (say, a correction) wins over the first.
    events.insert(
        -1,
        TaskEnded(
            execution_id="r",
            at=T0 + 9,
            task_id="a",
            status="failed",
            started_at=T0,
            error="late",
            attempts=1,
        ),
    )
    events.append(RunEnded(execution_id="r", at=T0 + 9, status="failed"))
    write_events(store, events, "r")
    execution = store.get_execution("r")
    assert execution.status is State.FAILED and execution.ended_at == T0 + 9
    assert (execution.task("a").status, execution.task("a").error) == (State.FAILED, "late")


def test_an_unreadable_journal_does_not_block_the_others(store: ExecutionStore) -> None:
    write_run(store, "good", tasks=[TaskPlan("a")])
    (store.journals_dir / "stray.jsonl").mkdir()  # read_json fails on it
    assert [s.id for s in store.history()] == ["good"]
    write_run(store, "good-2", start=T0 + 1)
    assert [s.id for s in store.history()] == ["good-2", "good"]


def test_logs_of_an_unknown_execution(store: ExecutionStore) -> None:
    with pytest.raises(ExecutionNotFound):
        store.logs("nope")


def test_archived_journals_rebuild_a_lost_index_and_old_stores_are_archived(
    store: ExecutionStore,
) -> None:
    write_run(store, "r1", tasks=[TaskPlan("a", lines=["l1"])])
    write_run(store, "r2", start=T0 + 5)
    before = [s.to_dict() for s in store.history()]
    assert sorted(p.name for p in (store.journals_dir / "done").iterdir()) == [
        "r1.jsonl", "r2.jsonl"
    ]  # fmt: skip
    assert not list(store.journals_dir.glob("*.jsonl"))
    # A deleted index is rebuilt from the archive.
    store.index_path.unlink()
    assert [s.to_dict() for s in store.history()] == before
    assert [line.line for line in store.logs("r1")] == ["l1"]
    # A store from before the archive (complete journals in journals/) moves them on its
    # first refresh, without reading them again.
    for path in (store.journals_dir / "done").iterdir():
        path.rename(store.journals_dir / path.name)
    assert [s.to_dict() for s in store.history()] == before
    assert not list(store.journals_dir.glob("*.jsonl"))
    # A run still being written stays where its runner appends.
    events = run_events("r3", start=T0 + 9, status="succeeded")
    write_events(store, events[:-1], "r3")
    assert store.get_execution("r3").status is State.RUNNING
    assert store.journal_location("r3") == store.journals_dir / "r3.jsonl"


def test_an_ended_archived_execution_cannot_be_journaled_again(store: ExecutionStore) -> None:
    write_run(store, "r1")
    store.refresh()
    with pytest.raises(StoreError, match="r1 already exists and has ended"):
        store.open_journal("r1")
    assert store.get_execution("r1").status is State.SUCCEEDED


def test_an_archived_journal_that_fails_once_is_read_when_it_can_be(
    store: ExecutionStore, tmp_path
) -> None:
    write_run(store, "a")
    write_run(store, "b", start=T0 + 5)
    store.refresh()
    done = store.journals_dir / "done"
    store.index_path.unlink()  # rebuild from the archive...
    (done / "b.jsonl").rename(tmp_path / "b.jsonl")
    (done / "b.jsonl").mkdir()  # ...while b cannot be read (read_json fails on a directory)
    assert [s.id for s in store.history()] == ["a"]
    (done / "b.jsonl").rmdir()
    (tmp_path / "b.jsonl").rename(done / "b.jsonl")
    assert [s.id for s in store.history()] == ["b", "a"]  # not forgotten


def test_an_id_journaled_again_before_archiving_is_read_not_archived_over(
    store: ExecutionStore,
) -> None:
    write_run(store, "r", tasks=[TaskPlan("a")])
    store.record("r")  # indexed and archived
    archived = store.journals_dir / "done" / "r.jsonl"
    # A file for the same id appears in journals/ (written before the archive check):
    # it differs from what the index has, so it is read, never silently moved over.
    events = run_events("r", start=T0 + 50, status="failed", tasks=[TaskPlan("a", status="failed")])
    (store.journals_dir / "r.jsonl").write_text(
        "".join(json.dumps({**e.to_dict(), "seq": n}) + "\n" for n, e in enumerate(events, 1))
    )
    assert store.get_execution("r").status is State.FAILED
    assert archived.exists()
