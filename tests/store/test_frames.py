"""History and SQL as DataFrames, over a history made by running real workflows."""

from __future__ import annotations

import builtins
import subprocess
import sys
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest

from jupyter_workflows.engine import WorkflowOrchestrator
from jupyter_workflows.errors import StoreError
from jupyter_workflows.execution.records import Execution
from jupyter_workflows.store import ExecutionStore, default_store_path
from jupyter_workflows.store.frames import history, resolve_since, sql

STEADY = {
    "name": "steady",
    "tasks": [
        {"id": "prepare", "type": "shell", "command": "echo prepared"},
        {
            "id": "checks",
            "type": "parallel",
            "depends_on": ["prepare"],
            "tasks": [
                {"id": "unit", "type": "shell", "command": "sleep 0.05; echo unit"},
                {"id": "lint", "type": "shell", "command": "echo lint"},
            ],
        },
        {"id": "report", "type": "shell", "command": "echo done", "depends_on": ["checks"]},
    ],
}
# Slower each run: SLEEP grows; the task's duration (and the run's) must follow.
SLOWER = {
    "name": "slower",
    "tasks": [{"id": "work", "type": "shell", "command": "sleep ${env.SLEEP}"}],
}
# Fails when FAIL=1; `fetch` fails its first attempt ever, then succeeds on the retry.
FLAKY = {
    "name": "flaky",
    "tasks": [
        {
            "id": "fetch",
            "type": "shell",
            "command": "test -f fetched || { touch fetched; exit 3; }",
            "retry": {"attempts": 2, "delay": 0},
        },
        {
            "id": "check",
            "type": "shell",
            "command": 'test "${env.FAIL}" != 1',
            "depends_on": ["fetch"],
        },
        {"id": "publish", "type": "shell", "command": "echo published", "depends_on": ["check"]},
    ],
}
SLEEPS = (0.05, 0.3, 0.6)


@dataclass
class History:
    """A project whose store holds real runs: 2 steady, 3 slower (growing), 3 flaky (1 fails)."""

    root: Path
    store: ExecutionStore
    executions: list[Execution]

    def of(self, workflow: str) -> list[Execution]:
        return [e for e in self.executions if e.workflow == workflow]


def make_history(root: Path) -> History:
    root.mkdir(parents=True, exist_ok=True)
    orchestrator = WorkflowOrchestrator(root, kill_grace=1.0)
    runs = [orchestrator.execute(STEADY) for _ in range(2)]
    runs += [orchestrator.execute(SLOWER, env={"SLEEP": str(s)}) for s in SLEEPS]
    runs += [
        orchestrator.execute(FLAKY, env={"FAIL": fail}, raise_on_failure=False)
        for fail in ("0", "1", "0")
    ]
    return History(root, orchestrator.store, runs)


@pytest.fixture(scope="module")
def recorded(tmp_path_factory) -> History:
    return make_history(tmp_path_factory.mktemp("frames") / "project")


def test_the_history_fixture_is_what_it_claims(recorded):
    statuses = [str(e.status) for e in recorded.of("flaky")]
    assert statuses == ["succeeded", "failed", "succeeded"]
    assert all(e.succeeded for e in recorded.of("steady") + recorded.of("slower"))
    durations = [e.duration for e in recorded.of("slower")]
    assert durations == sorted(durations)


def test_history_is_a_pandas_frame_newest_first_with_utc_times(recorded):
    frame = history(limit=None, project_root=recorded.root)
    assert isinstance(frame, pd.DataFrame)
    assert list(frame["id"]) == [e.id for e in reversed(recorded.executions)]
    assert str(frame["started_at"].dtype) == "datetime64[us, UTC]"
    assert str(frame["ended_at"].dtype) == "datetime64[us, UTC]"
    first = recorded.executions[0]
    row = frame.set_index("id").loc[first.id]
    assert row["started_at"].timestamp() == pytest.approx(first.started_at, abs=1e-6)
    assert row["duration_ms"] == pytest.approx(first.duration * 1000, abs=0.01)
    assert row["task_count"] == 5  # three top-level tasks and the group's two children
    failed = frame[frame["status"] == "failed"]
    assert list(failed["workflow"]) == ["flaky"] and list(failed["failed_tasks"]) == [1]


def test_history_filters_by_workflow_status_limit_and_since(recorded):
    assert len(history(project_root=recorded.root, limit=2)) == 2
    slower = history(workflow="slower", project_root=recorded.root)
    assert list(slower["id"]) == [e.id for e in reversed(recorded.of("slower"))]
    failed = history(status="failed", project_root=recorded.root)
    assert list(failed["id"]) == [recorded.of("flaky")[1].id]
    # since: (a millisecond before) the last run's start, as a datetime; "1h" covers all.
    # Not the exact float start: it and its microsecond timestamp may round apart.
    last = datetime.fromtimestamp(recorded.executions[-1].started_at - 0.001, tz=timezone.utc)
    assert list(history(since=last, project_root=recorded.root)["id"]) == [
        recorded.executions[-1].id
    ]
    assert len(history(since="1h", limit=None, project_root=recorded.root)) == 8
    later = datetime.now(timezone.utc) + timedelta(minutes=1)
    empty = history(since=later, project_root=recorded.root)
    assert len(empty) == 0 and "started_at" in empty.columns


def test_sql_queries_every_documented_table_by_name(recorded):
    store = recorded.store  # an ExecutionStore works as well as a project root
    for table in ("executions", "task_runs", "attempts", "logs"):
        frame = sql(f"SELECT count(*) AS n FROM {table}", store=store)
        assert frame["n"][0] > 0, table
    retries = sql(
        "SELECT task_id, attempt, status, exit_code FROM attempts "
        "WHERE task_id = ? ORDER BY started_at",
        ["fetch"],
        store=store,
    )
    assert list(retries["attempt"][:2]) == [1, 2]
    assert list(retries["exit_code"][:2]) == [3, 0]
    lines = sql("SELECT line FROM logs WHERE task_id = 'unit'", store=store)
    assert list(lines["line"]) == ["unit", "unit"]


def test_sql_timestamps_are_utc_whatever_the_session_time_zone(recorded):
    frame = sql(
        "SET TimeZone = 'America/New_York'; SELECT id, started_at FROM executions "
        "ORDER BY started_at LIMIT 1",
        project_root=recorded.root,
    )
    assert str(frame["started_at"].dtype) == "datetime64[us, UTC]"
    first = recorded.executions[0]
    assert frame["started_at"][0].timestamp() == pytest.approx(first.started_at, abs=1e-6)


def test_sql_keeps_types_nulls_and_empty_results(recorded):
    frame = sql(
        "SELECT task_id, duration_ms, exit_code, result, parent FROM task_runs "
        "WHERE task_id IN ('unit', 'publish') ORDER BY task_id, started_at",
        project_root=recorded.root,
    )
    assert frame["duration_ms"].dtype == "float64"
    assert frame["parent"].isna().sum() == 3  # publish ran 3 times (one skipped), no parent
    assert set(frame["parent"].dropna()) == {"checks"}
    empty = sql("SELECT id, started_at FROM executions WHERE false", project_root=recorded.root)
    assert list(empty.columns) == ["id", "started_at"] and len(empty) == 0


def test_sql_errors_are_store_errors_and_the_index_is_read_only(recorded):
    with pytest.raises(StoreError, match="no_such_table"):
        sql("SELECT * FROM no_such_table", project_root=recorded.root)
    with pytest.raises(StoreError, match="read-only"):
        sql("DELETE FROM executions", project_root=recorded.root)
    assert len(history(limit=None, project_root=recorded.root)) == 8


def test_a_run_that_just_ended_is_in_the_next_query(recorded, tmp_path):
    root = tmp_path / "fresh"
    assert len(history(project_root=root)) == 0
    WorkflowOrchestrator(root).execute(SLOWER, env={"SLEEP": "0"})
    assert list(history(project_root=root)["workflow"]) == ["slower"]


def _without(monkeypatch: pytest.MonkeyPatch, *names: str) -> None:
    """Make ``import name`` fail as if the package were not installed."""
    real = builtins.__import__

    def fake(name: str, *args, **kwargs):
        if name.split(".")[0] in names:
            raise ImportError(f"No module named {name!r}")
        return real(name, *args, **kwargs)

    for name in names:
        monkeypatch.delitem(sys.modules, name, raising=False)
    monkeypatch.setattr(builtins, "__import__", fake)


def test_without_pandas_or_polars_the_result_is_an_arrow_table(recorded, monkeypatch):
    _without(monkeypatch, "pandas", "polars")
    table = history(limit=None, project_root=recorded.root)
    assert isinstance(table, pa.Table)
    assert table.schema.field("started_at").type == pa.timestamp("us", tz="UTC")
    assert table.num_rows == 8
    counts = sql(
        "SELECT workflow, count(*) AS n FROM executions GROUP BY 1 ORDER BY 1",
        project_root=recorded.root,
    )
    assert isinstance(counts, pa.Table)
    assert counts.to_pylist() == [
        {"workflow": "flaky", "n": 3},
        {"workflow": "slower", "n": 3},
        {"workflow": "steady", "n": 2},
    ]


def test_with_polars_but_not_pandas_the_result_is_polars(recorded, monkeypatch):
    polars = pytest.importorskip("polars")
    _without(monkeypatch, "pandas")
    frame = history(project_root=recorded.root)
    assert isinstance(frame, polars.DataFrame)


@pytest.mark.parametrize(
    ("text", "seconds"), [("7d", 7 * 86400), ("12h", 12 * 3600), ("30m", 1800), ("1h30m", 5400)]
)
def test_since_durations_count_back_from_now(text, seconds):
    now = datetime(2026, 1, 31, 12, tzinfo=timezone.utc)
    assert resolve_since(text, now=now) == now - timedelta(seconds=seconds)


def test_since_accepts_iso_dates_and_refuses_nonsense():
    assert resolve_since("2026-01-31") == datetime(2026, 1, 31)
    assert resolve_since(timedelta(hours=1), now=datetime(2026, 1, 1, 1)) == datetime(2026, 1, 1)
    with pytest.raises(ValueError, match="needs a unit"):
        resolve_since("7")
    with pytest.raises(ValueError, match="neither a duration"):
        resolve_since("last week")


def test_the_default_store_is_the_projects_and_importing_is_cheap(recorded, monkeypatch):
    monkeypatch.chdir(recorded.root)
    assert len(history(limit=None)) == 8
    assert default_store_path(recorded.root).is_dir()
    code = "import sys, jupyter_workflows.store.frames as f; print(*(m in sys.modules for m in M))"
    code = code.replace("M", repr(("pandas", "pyarrow", "duckdb")))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False", "False"]
