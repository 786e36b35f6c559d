"""Benchmark the execution store's read paths on an index of 1,000,000 task_runs rows.

Usage: ``.venv/bin/python bench/bench_store.py [--executions N] [--tasks T] [--dir DIR]``

The index is filled synthetically with DuckDB SQL over ``range()`` (journals are marked
complete, so refreshes skip them as they would skip old history). Each public call is timed
whole, as a caller sees it: lock, open, refresh, query, close. Target: under 0.5 s each.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from jupyter_workflows.execution.events import RunEnded, RunStarted, TaskEnded, TaskStarted  # noqa: E402
from jupyter_workflows.store import ExecutionStore  # noqa: E402

TARGET_S = 0.5
BASE = 1_700_000_000  # epoch seconds of the first synthetic run

FILL = [
    # Twenty workflows; 90% succeed, then failed, timed_out, cancelled, crashed.
    """
    INSERT INTO executions (id, workflow, version, file, project_root, trigger, status,
                            started_at, ended_at, duration_ms, error, pid, host, pid_start,
                            task_count)
    SELECT 'exec-' || lpad(i::VARCHAR, 8, '0'), 'workflow-' || (i % 20), '1', 'wf.json', '/p',
           CASE WHEN i % 7 = 0 THEN 'cron' ELSE 'manual' END,
           CASE WHEN i % 10 < 9 THEN 'succeeded'
                ELSE ['failed', 'timed_out', 'cancelled', 'crashed'][1 + i % 4] END,
           to_timestamp($base + i * 60), to_timestamp($base + i * 60 + (hash(i) % 600000) / 1000),
           (hash(i) % 600000)::DOUBLE, NULL, 1000 + i % 30000, 'bench-host', NULL, $tasks
    FROM range($executions) AS e(i)
    """,
    """
    INSERT INTO task_runs (execution_id, task_id, name, type, parent, status, started_at,
                           ended_at, duration_ms, attempts, exit_code, result, outputs, error,
                           depends_on, position)
    SELECT 'exec-' || lpad(i::VARCHAR, 8, '0'), 'task-' || j, 'Task ' || j, 'shell', NULL,
           CASE WHEN hash(i, j) % 50 = 0 THEN 'failed' ELSE 'succeeded' END,
           to_timestamp($base + i * 60 + j), to_timestamp($base + i * 60 + j + 1),
           (hash(i, j) % 30000)::DOUBLE, 1 + (hash(j, i) % 10 = 0)::INTEGER, 0,
           '{"rows": 1}', '{}', NULL, '[]', j
    FROM range($executions) AS e(i), range($tasks) AS t(j)
    """,
    """
    INSERT INTO attempts (execution_id, task_id, attempt, status, started_at, ended_at,
                          duration_ms, exit_code, error)
    SELECT execution_id, task_id, 1, status, started_at, ended_at, duration_ms, 0, NULL
    FROM task_runs
    """,
    """
    INSERT INTO journals (execution_id, path, last_seq, size, complete)
    SELECT id, '/nonexistent/' || id || '.jsonl', 10, 1000, true FROM executions
    """,
]


def build(store: ExecutionStore, executions: int, tasks: int) -> None:
    """Create the schema through the store, then fill the tables in bulk."""
    import duckdb

    store.check_writable()  # an empty store: the journals folder makes the next read index it
    store.refresh()  # creates index.duckdb with the schema
    con = duckdb.connect(str(store.index_path))
    params = {"base": BASE, "executions": executions, "tasks": tasks}
    for statement in FILL:
        used = {k: v for k, v in params.items() if f"${k}" in statement}
        con.execute(statement, used)
    con.close()


def median_time(fn: Callable[[], Any], runs: int = 5) -> float:
    """Median wall time of ``runs`` calls, after one warm-up call."""
    fn()
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def record_one(store: ExecutionStore) -> None:
    """Journal a small finished run and record it: the runner's last step."""
    eid = f"new-{time.perf_counter_ns()}"
    with store.open_journal(eid) as write:
        write(RunStarted(execution_id=eid, workflow="workflow-0", tasks=[{"id": "t"}]))
        write(TaskStarted(execution_id=eid, task_id="t"))
        write(TaskEnded(execution_id=eid, task_id="t", status="succeeded", attempts=1))
        write(RunEnded(execution_id=eid, status="succeeded"))
    store.record(eid)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--executions", type=int, default=50_000)
    parser.add_argument("--tasks", type=int, default=20, help="task_runs rows per execution")
    parser.add_argument("--dir", type=Path, default=None, help="store directory (default: temp)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as temp:
        store = ExecutionStore(args.dir or Path(temp) / "executions")
        started = time.perf_counter()
        build(store, args.executions, args.tasks)
        rows = store.query("SELECT count(*) FROM task_runs")[1][0][0]
        print(
            f"built {args.executions:,} executions, {rows:,} task_runs rows "
            f"in {time.perf_counter() - started:.1f} s"
        )
        cases: list[tuple[str, Callable[[], Any], bool]] = [
            ("history(limit=20)", lambda: store.history(limit=20), True),
            (
                "history(limit=20, workflow=, status=)",
                lambda: store.history(limit=20, workflow="workflow-3", status="failed"),
                False,
            ),
            ("workflow_metrics()", store.workflow_metrics, True),
            ("task_metrics()", store.task_metrics, True),
            ("get_execution(id)", lambda: store.get_execution("exec-00001234"), False),
            ("refresh() with nothing new", store.refresh, False),
            ("record() of a new run", lambda: record_one(store), False),
        ]
        failed = False
        for label, fn, targeted in cases:
            seconds = median_time(fn)
            verdict = ""
            if targeted:
                ok = seconds < TARGET_S
                failed |= not ok
                verdict = "  ok" if ok else f"  OVER the {TARGET_S} s target"
            print(f"{label:42s} median of 5: {seconds * 1000:8.1f} ms{verdict}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
