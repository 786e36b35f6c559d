"""Where attempts ran: AttemptPlaced and the run's executor, from the journal to the record."""

from __future__ import annotations

import json

import duckdb

from jupyter_workflows.store import ExecutionStore
from jupyter_workflows.store.schema import MIGRATIONS, SCHEMA_VERSION

from .helpers import T0, TaskPlan, write_run

W1, W2 = "tcp://10.0.0.7:40123", "tcp://10.0.0.8:40555"
CLUSTER, DASHBOARD = "tcp://10.0.0.5:8786", "http://10.0.0.5:8787/status"


def test_each_attempt_comes_back_with_its_worker_and_host(store: ExecutionStore) -> None:
    write_run(
        store,
        "d1",
        executor="dask",
        cluster=CLUSTER,
        dashboard=DASHBOARD,
        tasks=[
            # Retried after its worker was lost: the second attempt ran elsewhere.
            TaskPlan("a", attempts=2, placed=[("dask", W1, "node-7"), ("dask", W2, "node-8")]),
            TaskPlan("b", placed=[("dask", W2, "node-8")]),
            TaskPlan("c"),  # never placed (a composite, or a journal from before placement)
        ],
    )
    execution = store.get_execution("d1")
    assert (execution.executor, execution.cluster, execution.dashboard) == (
        "dask",
        CLUSTER,
        DASHBOARD,
    )
    a, b, c = (execution.task(t) for t in "abc")
    assert [(x.executor, x.worker, x.host) for x in a.attempts] == [
        ("dask", W1, "node-7"),
        ("dask", W2, "node-8"),
    ]
    assert (b.attempts[0].worker, b.attempts[0].host) == (W2, "node-8")
    assert (c.attempts[0].executor, c.attempts[0].worker, c.attempts[0].host) == (None,) * 3
    # As `workflow status --json` prints it.
    data = json.loads(json.dumps(execution.to_dict()))
    assert (data["executor"], data["cluster"], data["dashboard"]) == ("dask", CLUSTER, DASHBOARD)
    retried = data["tasks"][0]["attempts"][1]
    assert (retried["executor"], retried["worker"], retried["host"]) == ("dask", W2, "node-8")


def test_a_local_attempt_has_its_host_and_no_worker(store: ExecutionStore) -> None:
    write_run(store, "l1", tasks=[TaskPlan("a", placed=[("local", None, "laptop")])])
    execution = store.get_execution("l1")
    attempt = execution.task("a").attempts[0]
    assert (attempt.executor, attempt.worker, attempt.host) == ("local", None, "laptop")
    assert (execution.executor, execution.cluster, execution.dashboard) == ("local", None, None)


def test_a_running_attempt_is_placed_before_it_ends(store: ExecutionStore) -> None:
    write_run(
        store,
        "r1",
        status=None,
        executor="dask",
        cluster=CLUSTER,
        tasks=[TaskPlan("a", placed=[("dask", W1, "node-7")])],
    )
    # Cut the journal after the placement: the attempt is still running there.
    path = store.journal_path("r1")
    lines = path.read_text().splitlines(keepends=True)
    placed = next(i for i, line in enumerate(lines) if '"attempt_placed"' in line)
    path.write_text("".join(lines[: placed + 1]))
    attempt = store.get_execution("r1").task("a").attempts[0]
    assert (str(attempt.status), attempt.worker) == ("running", W1)


def _old_index(store: ExecutionStore) -> None:
    """An index as schema version 2 left it: one run indexed, its journal archived."""
    write_run(store, "old", tasks=[TaskPlan("a", lines=["hello"])])
    journal = store.journal_path("old")
    done = journal.parent / "done" / journal.name
    done.parent.mkdir()
    journal.rename(done)
    con = duckdb.connect(str(store.index_path))
    try:
        con.execute(
            "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ)"
        )
        for version, step in enumerate(MIGRATIONS[:2], 1):
            con.execute(step)
            con.execute("INSERT INTO schema_migrations VALUES (?, now())", [version])
        con.execute(
            "INSERT INTO executions VALUES ('old', 'etl', NULL, NULL, NULL, 'manual', "
            "'succeeded', to_timestamp(?), to_timestamp(?), 1000, NULL, 0, '', NULL, 1)",
            [T0, T0 + 1],
        )
        con.execute(
            "INSERT INTO task_runs VALUES ('old', 'a', 'a', 'shell', NULL, 'succeeded', "
            "to_timestamp(?), to_timestamp(?), 1000, 1, 0, NULL, '{}', NULL, '[]', 0)",
            [T0, T0 + 1],
        )
        con.execute(
            "INSERT INTO attempts VALUES ('old', 'a', 1, 'succeeded', to_timestamp(?), "
            "to_timestamp(?), 1000, 0, NULL)",
            [T0, T0 + 1],
        )
        con.execute(
            "INSERT INTO logs VALUES ('old', 'a', 1, 4, to_timestamp(?), 'stdout', 'hello')", [T0]
        )
        con.execute(
            "INSERT INTO journals VALUES ('old', ?, ?, ?, true)",
            [str(done), 7, done.stat().st_size],
        )
        con.execute("INSERT INTO store_meta VALUES ('done_indexed', 'true')")
    finally:
        con.close()


def test_an_old_index_migrates_and_keeps_its_history(store: ExecutionStore) -> None:
    _old_index(store)
    write_run(
        store,
        "new",
        start=T0 + 60,
        executor="dask",
        cluster=CLUSTER,
        tasks=[TaskPlan("a", placed=[("dask", W1, "node-7")])],
    )
    assert [r.id for r in store.history()] == ["new", "old"]
    _, rows = store.query("SELECT max(version) FROM schema_migrations")
    assert rows == [(SCHEMA_VERSION,)]
    old = store.get_execution("old", logs=5)
    assert old.executor is None  # the old row cannot say
    attempt = old.task("a").attempts[0]
    assert (str(attempt.status), attempt.executor, attempt.worker, attempt.host) == (
        "succeeded",
        None,
        None,
        None,
    )
    assert old.task("a").log_tail == ["hello"]
    new = store.get_execution("new")
    assert (new.executor, new.cluster, new.task("a").attempts[0].worker) == ("dask", CLUSTER, W1)
