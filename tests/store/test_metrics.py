"""Metrics on a known data set: counts, success rate, averages and percentiles."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from jupyter_workflows.store import ExecutionStore

from .helpers import T0, TaskPlan, write_run

HOUR = 3600.0


@pytest.fixture
def populated(store: ExecutionStore) -> ExecutionStore:
    """Ten 'etl' runs: run i (1..10) has extract taking i*100 ms; runs 9 and 10 fail in load.

    load takes 50 ms per attempt and retries once (2 attempts) in runs 1-3.
    """
    for i in range(1, 11):
        failed = i >= 9
        write_run(
            store,
            f"etl-{i:02d}",
            workflow="etl",
            start=T0 + i * HOUR,
            status="failed" if failed else "succeeded",
            tasks=[
                TaskPlan("extract", duration=i / 10),
                TaskPlan(
                    "load",
                    status="failed" if failed else "succeeded",
                    attempts=2 if i <= 3 else 1,
                    duration=0.1 if i <= 3 else 0.05,
                ),
            ],
        )
    write_run(store, "etl-running", workflow="etl", start=T0 + 11 * HOUR, status=None)
    write_run(store, "other-1", workflow="other", start=T0, tasks=[TaskPlan("x", duration=2.0)])
    return store


def test_workflow_metrics(populated: ExecutionStore) -> None:
    etl, other = populated.workflow_metrics()
    assert (etl["workflow"], etl["runs"], etl["succeeded"], etl["failed"]) == ("etl", 11, 8, 2)
    assert etl["success_rate"] == pytest.approx(0.8)  # over finished runs only
    # Run i lasts i*100 ms + load: 100 ms (i <= 3) or 50 ms.
    durations = sorted(i * 100 + (100 if i <= 3 else 50) for i in range(1, 11))
    assert etl["avg_ms"] == pytest.approx(sum(durations) / 10, abs=1e-3)
    assert durations == [200, 300, 400, 450, 550, 650, 750, 850, 950, 1050]
    # Continuous quantiles (linear interpolation, like numpy's default).
    assert etl["p50_ms"] == pytest.approx(600, abs=1e-3)
    assert etl["p95_ms"] == pytest.approx(1005, abs=1e-3)
    assert etl["last_status"] == "running"
    assert etl["last_started_at"] == datetime.fromtimestamp(T0 + 11 * HOUR, tz=timezone.utc)
    assert (other["workflow"], other["runs"], other["success_rate"]) == ("other", 1, 1.0)
    assert other["p95_ms"] == pytest.approx(2000, abs=1e-3)


def test_task_metrics(populated: ExecutionStore) -> None:
    rows = {(r["workflow"], r["task_id"]): r for r in populated.task_metrics()}
    assert list(rows) == [("etl", "extract"), ("etl", "load"), ("other", "x")]
    extract, load = rows["etl", "extract"], rows["etl", "load"]
    assert (extract["runs"], extract["failures"], extract["retries"]) == (10, 0, 0)
    assert extract["avg_ms"] == pytest.approx(550, abs=1e-3)
    assert extract["p50_ms"] == pytest.approx(550, abs=1e-3)
    assert extract["p95_ms"] == pytest.approx(955, abs=1e-3)
    assert (load["runs"], load["failures"], load["retries"]) == (10, 2, 3)
    assert load["p50_ms"] == pytest.approx(50, abs=1e-3)
    assert load["p95_ms"] == pytest.approx(100, abs=1e-3)


def test_metrics_filters(populated: ExecutionStore) -> None:
    assert [r["workflow"] for r in populated.workflow_metrics(workflow="other")] == ["other"]
    since = datetime.fromtimestamp(T0 + 9 * HOUR, tz=timezone.utc)
    etl = populated.workflow_metrics(workflow="etl", since=since)[0]
    assert (etl["runs"], etl["succeeded"], etl["failed"]) == (3, 0, 2)
    extract = populated.task_metrics(workflow="etl", since=since)[0]
    assert extract["runs"] == 2
    assert extract["p50_ms"] == pytest.approx(950, abs=1e-3)
