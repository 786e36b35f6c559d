"""The named reads the surfaces use: the execution list, latest runs, and the rules' figures."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from jupyter_workflows.store import ExecutionStore
from jupyter_workflows.store.models import DurationMedian, LatestRun

from .helpers import T0, TaskPlan, write_run

HOUR = 3600.0


@pytest.fixture
def runs(store: ExecutionStore) -> ExecutionStore:
    """etl-1..etl-5 an hour apart (etl-4 fails, etl-3 lasts 3 s, the others 1 s), one 'other'
    run between them, and an etl run still going."""
    for i in range(1, 6):
        write_run(
            store,
            f"etl-{i}",
            workflow="etl",
            start=T0 + i * HOUR,
            status="failed" if i == 4 else "succeeded",
            tasks=[TaskPlan("work", duration=3.0 if i == 3 else 1.0)],
        )
    write_run(store, "other-1", workflow="other", start=T0 + 2.5 * HOUR, tasks=[TaskPlan("x")])
    write_run(store, "etl-open", workflow="etl", start=T0 + 6 * HOUR, status=None)
    return store


def test_execution_page_pages_newest_first_with_the_total(runs: ExecutionStore) -> None:
    first = runs.execution_page(limit=3)
    assert [r.id for r in first.executions] == ["etl-open", "etl-5", "etl-4"]
    assert first.total == 7
    rest = runs.execution_page(limit=3, offset=6)
    assert [r.id for r in rest.executions] == ["etl-1"] and rest.total == 7
    assert runs.execution_page(limit=3, offset=50).total == 7  # past the end: counted apart
    failed = runs.execution_page(workflow="etl", status="failed")
    (row,) = failed.executions
    assert (row.id, row.workflow, row.status, row.task_count, failed.total) == (
        "etl-4", "etl", "failed", 1, 1,
    )  # fmt: skip
    assert row.started_at == T0 + 4 * HOUR  # epoch seconds, as the REST API serves them
    assert row.duration_ms == pytest.approx(1000.0)
    since = datetime.fromtimestamp(T0 + 4 * HOUR, tz=timezone.utc)
    assert [r.id for r in runs.execution_page(since=since).executions] == [
        "etl-open", "etl-5", "etl-4",
    ]  # fmt: skip
    assert runs.execution_page(workflow="nope").total == 0


def test_count_executions_narrows_like_history(runs: ExecutionStore) -> None:
    assert runs.count_executions() == 7
    assert runs.count_executions(status="running") == 1
    assert runs.count_executions(workflow="other", status="running") == 0
    assert runs.count_executions(workflow="etl") == len(runs.history(limit=None, workflow="etl"))


def test_latest_runs_name_each_workflows_newest(runs: ExecutionStore) -> None:
    latest = runs.latest_runs()
    assert latest["etl"] == LatestRun("etl-open", "running", T0 + 6 * HOUR)
    assert latest["other"].execution_id == "other-1"
    assert set(latest) == {"etl", "other"}


def test_run_metrics_are_the_workflow_metrics_of_everything(runs: ExecutionStore) -> None:
    (etl,) = runs.workflow_metrics(workflow="etl")
    overall = runs.run_metrics(workflow="etl")
    assert list(overall) == ["runs", "succeeded", "failed", "success_rate"] + [
        "avg_ms", "p50_ms", "p95_ms",
    ]  # fmt: skip
    assert overall.items() <= etl.items()
    assert runs.run_metrics()["runs"] == 7
    assert runs.run_metrics(since=datetime(2100, 1, 1, tzinfo=timezone.utc))["success_rate"] is None


def test_task_durations_are_the_ended_task_runs(runs: ExecutionStore) -> None:
    rows = runs.task_durations(workflow="etl")
    assert {r["execution_id"] for r in rows} == {f"etl-{i}" for i in range(1, 6)}
    assert {(r["workflow"], r["task_id"]) for r in rows} == {("etl", "work")}
    assert max(r["duration_ms"] for r in rows) == pytest.approx(3000.0)
    assert len(runs.task_durations()) == 6


def test_the_alert_rules_figures(runs: ExecutionStore) -> None:
    # Up to etl-4, included; the running one is no finished run.
    assert runs.finished_statuses("etl", up_to="etl-4", limit=10) == [
        "failed", "succeeded", "succeeded", "succeeded",
    ]  # fmt: skip
    assert runs.finished_statuses("etl", up_to="etl-open", limit=2) == ["succeeded", "failed"]
    # Before etl-5: the successful etl-1..3 (1 s, 1 s, 3 s); etl-4 failed.
    assert runs.success_median("etl", before="etl-5", limit=10) == DurationMedian(3, 1000.0)
    assert runs.success_median("etl", before="etl-5", limit=1) == DurationMedian(1, 3000.0)
    assert runs.success_median("etl", before="etl-1", limit=10) == DurationMedian(0, None)


def test_a_snapshot_answers_like_the_store(runs: ExecutionStore) -> None:
    with runs.snapshot() as view:  # holds the lock: the store's own reads wait till after
        seen = (view.execution_page(limit=4), view.latest_runs(), view.run_metrics())
        logs, tasks = view.logs("etl-1"), view.task_metrics()
    assert seen == (runs.execution_page(limit=4), runs.latest_runs(), runs.run_metrics())
    assert (logs, tasks) == (runs.logs("etl-1"), runs.task_metrics())
