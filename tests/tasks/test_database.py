"""database tasks against real SQLite and DuckDB files and a real PostgreSQL server."""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from jupyter_workflows.definition.templates import Scope
from jupyter_workflows.execution.states import State
from jupyter_workflows.store import default_store_path
from jupyter_workflows.store.execution_store import ExecutionStore
from jupyter_workflows.tasks.database.failures import DatabaseFailure
from jupyter_workflows.tasks.database.templating import render_sql
from jupyter_workflows.tasks.database.urls import redact
from tests.conftest import cli, make_workflow, write_workflow
from tests.postgres import (
    TEST_PASSWORD,
    TEST_USER,
    PostgresServer,
    fresh_database,
    postgres_fixture,  # noqa: F401 - the session fixture "postgres"
)


@dataclass
class Db:
    """One backend under test: the task's connection URL and a way to look inside."""

    kind: str
    url: str
    mark: str  # positional placeholder
    named: Callable[[str], str]  # named placeholder for a name
    query: Callable[[str], list[tuple[Any, ...]]]
    long_query: str  # runs until interrupted

    def tables(self) -> set[str]:
        if self.kind == "sqlite":
            sql = "SELECT name FROM sqlite_master WHERE type = 'table'"
        else:
            sql = "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'"
            sql = sql.replace("'main'", "'public'") if self.kind == "postgresql" else sql
        return {row[0] for row in self.query(sql)}


def _sqlite(project: Path) -> Db:
    (project / "data").mkdir()
    path = project / "data" / "app.db"

    def query(sql: str) -> list[tuple[Any, ...]]:
        with sqlite3.connect(path) as conn:
            return conn.execute(sql).fetchall()

    return Db(
        "sqlite",
        "sqlite:///data/app.db",  # relative to the project root
        "?",
        lambda name: f":{name}",
        query,
        "WITH RECURSIVE r(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM r) SELECT count(*) FROM r",
    )


def _duckdb(project: Path) -> Db:
    import duckdb

    path = project / "app.duckdb"

    def query(sql: str) -> list[tuple[Any, ...]]:
        with duckdb.connect(str(path)) as conn:
            return conn.execute(sql).fetchall()

    return Db(
        "duckdb",
        f"duckdb:///{path}",  # absolute: duckdb:////tmp/...
        "?",
        lambda name: f"${name}",
        query,
        "SELECT count(*) FROM range(1000000000000) a",
    )


def _postgres(server: PostgresServer) -> Db:
    import psycopg

    url = fresh_database(server, "t_" + uuid.uuid4().hex[:10])

    def query(sql: str) -> list[tuple[Any, ...]]:
        with psycopg.connect(url) as conn:
            return conn.execute(sql).fetchall()

    return Db("postgresql", url, "%s", lambda name: f"%({name})s", query, "SELECT pg_sleep(30)")


@pytest.fixture(params=["sqlite", "duckdb", "postgresql"])
def db(request, project) -> Db:
    if request.param == "sqlite":
        return _sqlite(project)
    if request.param == "duckdb":
        return _duckdb(project)
    return _postgres(request.getfixturevalue("postgres"))


TASK_FIELDS = {"depends_on", "timeout"}


def task(task_id: str, url: str, **fields: Any) -> dict[str, Any]:
    """A database task; ``fields`` go to its config, but for the task-level ones."""
    outer = {k: v for k, v in fields.items() if k in TASK_FIELDS}
    config = {k: v for k, v in fields.items() if k not in TASK_FIELDS}
    return {"id": task_id, "type": "database", **outer, "config": {"connection": url, **config}}


def setup_people(db: Db, run_workflow) -> None:
    create = "CREATE TABLE people (id INTEGER PRIMARY KEY, name TEXT, score REAL)"
    insert = "INSERT INTO people VALUES (1, 'ada', 1.5), (2, 'bob', 2.0), (3, 'cy', 3.25)"
    execution = run_workflow(
        make_workflow(task("setup", db.url, operation="transaction", queries=[create, insert]))
    )
    setup = execution.tasks["setup"]
    assert setup.status is State.SUCCEEDED, setup.error
    assert setup.result == [0, 3] and setup.outputs == {"queries": 2, "rowcount": 3}


# --------------------------------------------------------------------------- query


def test_query_rows_as_objects_with_positional_and_named_params(db, run_workflow):
    setup_people(db, run_workflow)
    execution = run_workflow(
        make_workflow(
            task(
                "positional",
                db.url,
                query=f"SELECT id, name, score FROM people WHERE id >= {db.mark} ORDER BY id",
                params=[2],
            ),
            task(
                "named",
                db.url,
                query=f"SELECT name FROM people WHERE name = {db.named('who')}",
                params={"who": "ada"},
            ),
            task(
                "update",
                db.url,
                query=f"UPDATE people SET name = upper(name) WHERE id > {db.mark}",
                params=[1],
                depends_on=["positional", "named"],
            ),
        )
    )
    positional, named, update = (execution.tasks[t] for t in ("positional", "named", "update"))
    assert positional.status is State.SUCCEEDED, positional.error
    assert positional.result == [
        {"id": 2, "name": "bob", "score": 2.0},
        {"id": 3, "name": "cy", "score": 3.25},
    ]
    assert positional.outputs == {"rows": 2} and positional.exit_code == 0
    assert any("query returned 2 rows in" in line for line in positional.log_tail)
    assert named.result == [{"name": "ada"}]
    assert update.status is State.SUCCEEDED, update.error
    assert update.result == {"rowcount": 2} and update.outputs == {"rowcount": 2}
    assert db.query("SELECT name FROM people ORDER BY id") == [("ada",), ("BOB",), ("CY",)]


def test_templated_params_keep_their_type(db, run_workflow):
    setup_people(db, run_workflow)
    execution = run_workflow(
        make_workflow(
            task("count", db.url, query="SELECT count(*) AS n FROM people WHERE id > 1"),
            task(
                "use",
                db.url,
                # A lone reference binds the upstream integer itself, not its text ("2").
                query=f"SELECT name FROM people WHERE id = {db.mark}",
                params=["${tasks.count.result.0.n}"],
                depends_on=["count"],
            ),
        )
    )
    assert execution.tasks["count"].result == [{"n": 2}]
    assert execution.tasks["use"].result == [{"name": "bob"}]


def test_duckdb_values_become_json(project, run_workflow):
    query = (
        "SELECT 1.50::DECIMAL(10, 2) AS price, 12::DECIMAL(18, 0) AS whole,"
        " DATE '2024-02-29' AS day, TIMESTAMP '2024-02-29 10:30:00' AS at,"
        " INTERVAL 90 MINUTE AS pause, {'k': [1, 2]} AS nested, 'ab'::BLOB AS raw,"
        " 'inf'::DOUBLE AS big, NULL AS nothing"
    )
    execution = run_workflow(make_workflow(task("v", "duckdb:///:memory:", query=query)))
    assert execution.tasks["v"].result == [
        {
            "price": 1.5,
            "whole": 12,
            "day": "2024-02-29",
            "at": "2024-02-29T10:30:00",
            "pause": 5400.0,
            "nested": {"k": [1, 2]},
            "raw": "YWI=",
            "big": "inf",
            "nothing": None,
        }
    ]


def test_postgres_values_become_json(postgres, run_workflow):
    query = (
        "SELECT 1.50::numeric AS price, 3.14159265358979323846::numeric AS pi,"
        " '2024-02-29 10:30:00+00'::timestamptz AT TIME ZONE 'UTC' AS at,"
        " '{\"a\": [1, true]}'::jsonb AS doc, ARRAY[1, 2] AS list,"
        " '6ecd8c99-4036-403d-bf84-cf8400f67836'::uuid AS id"
    )
    execution = run_workflow(make_workflow(task("v", postgres.url(), query=query)))
    assert execution.tasks["v"].result == [
        {
            "price": 1.5,
            "pi": "3.14159265358979323846",  # a float would lose digits: kept as text
            "at": "2024-02-29T10:30:00",
            "doc": {"a": [1, True]},
            "list": [1, 2],
            "id": "6ecd8c99-4036-403d-bf84-cf8400f67836",
        }
    ]


def test_syntax_error_gives_the_database_message(db, run_workflow):
    execution = run_workflow(make_workflow(task("bad", db.url, query="SELEC 1")))
    bad = execution.tasks["bad"]
    assert bad.status is State.FAILED and bad.exit_code == 1
    assert bad.error.startswith("query failed: ") and "SELEC" in bad.error
    assert "Traceback" not in "\n".join(bad.log_tail)


NASTY = "it's \"x\" \\' OR '1'='1 -- $$ /* ; DROP TABLE people"


def test_templated_values_in_sql_stay_data(db, run_workflow):
    setup_people(db, run_workflow)
    query = (
        "SELECT '${env.NASTY}' AS text, 1 AS \"${env.NASTY}\", id FROM people"
        " WHERE id < ${env.N} ORDER BY id LIMIT ${tasks.limit.result.0.n}"
    )
    execution = run_workflow(
        make_workflow(
            task("limit", db.url, query="SELECT 1 AS n"),
            task("q", db.url, query=query, depends_on=["limit"]),
        ),
        env={"NASTY": NASTY, "N": "3"},
    )
    q = execution.tasks["q"]
    assert q.status is State.SUCCEEDED, q.error
    assert q.result == [{"text": NASTY, NASTY: 1, "id": 1}]
    assert db.query("SELECT count(*) FROM people") == [(3,)]


@pytest.mark.parametrize(
    ("query", "refusal"),
    [
        ("SELECT * FROM people WHERE name = ${env.V}", "is text outside quotes"),
        ("SELECT 1 -- ${env.V}", "inside a comment"),
        ("SELECT /* ${env.V} */ 1", "inside a comment"),
        ("SELECT [${env.V}] FROM t", "inside a [bracketed] name"),
        ("SELECT E'${env.V}'", "inside an E'...' string"),
        ("SELECT X'${env.V}'", "inside a prefixed string"),
    ],
)
def test_a_value_that_could_become_sql_is_refused(project, run_workflow, query, refusal):
    execution = run_workflow(
        make_workflow(task("t", "sqlite:///:memory:", query=query)), env={"V": "1 OR 1=1"}
    )
    t = execution.tasks["t"]
    assert t.status is State.FAILED and t.error.startswith("query: ${env.V} ")
    assert refusal in t.error and "'params'" in t.error and "1 OR 1=1" not in t.error


def test_sql_templates_know_postgres_and_duckdb_quoting():
    scope = Scope(env={"V": "a'b"})
    for dialect in ("postgresql", "duckdb"):
        assert render_sql("SELECT $$it's$$, '${env.V}'", scope, dialect, "query") == (
            "SELECT $$it's$$, 'a''b'"
        )
        assert render_sql("SELECT /* /* */ ' */ '${env.V}'", scope, dialect, "q") == (
            "SELECT /* /* */ ' */ 'a''b'"
        )
        with pytest.raises(DatabaseFailure, match="dollar-quoted"):
            render_sql("SELECT $f$ ${env.V} $f$", scope, dialect, "query")
    # SQLite has no $$ strings nor nested comments; [..] and `..` are names there.
    assert render_sql("SELECT `it's`, '${env.V}'", scope, "sqlite", "q") == (
        "SELECT `it's`, 'a''b'"
    )
    assert render_sql("SELECT 'lit $${x}'", scope, "sqlite", "q") == "SELECT 'lit ${x}'"


# --------------------------------------------------------------------------- transaction


def test_transaction_is_all_or_nothing(db, run_workflow):
    setup_people(db, run_workflow)
    insert = f"INSERT INTO people (id, name) VALUES ({db.mark}, {db.mark})"
    execution = run_workflow(
        make_workflow(
            task(
                "broken",
                db.url,
                operation="transaction",
                queries=[insert, insert, "INSERT INTO missing_table VALUES (1)"],
                params=[[10, "x"], [11, "y"], None],
            )
        )
    )
    broken = execution.tasks["broken"]
    assert broken.status is State.FAILED
    assert broken.error.startswith("query 3 of 3 failed: ") and "missing_table" in broken.error
    assert broken.error.endswith("rolled back all 3 queries")
    assert db.query("SELECT count(*) FROM people") == [(3,)]
    execution = run_workflow(
        make_workflow(
            task(
                "whole",
                db.url,
                operation="transaction",
                queries=[insert, f"DELETE FROM people WHERE id <= {db.mark}"],
                params=[[20, "z"], [2]],
            )
        )
    )
    whole = execution.tasks["whole"]
    assert whole.status is State.SUCCEEDED, whole.error
    assert whole.result == [1, 2] and whole.outputs == {"queries": 2, "rowcount": 3}
    assert db.query("SELECT id FROM people ORDER BY id") == [(3,), (20,)]


def test_transaction_without_rollback_keeps_what_ran(project, run_workflow):
    url = "sqlite:///app.db"
    execution = run_workflow(
        make_workflow(
            task(
                "t",
                url,
                operation="transaction",
                rollback_on_failure=False,
                queries=["CREATE TABLE a (x INTEGER)", "INSERT INTO a VALUES (1)", "SELEC"],
            )
        )
    )
    assert "queries 1-2 stay committed" in execution.tasks["t"].error
    with sqlite3.connect(project / "app.db") as conn:
        assert conn.execute("SELECT x FROM a").fetchall() == [(1,)]


def test_transaction_params_need_one_entry_per_query(project, run_workflow):
    execution = run_workflow(
        make_workflow(
            task(
                "t",
                "sqlite:///:memory:",
                operation="transaction",
                queries=["SELECT ?"],
                params=[1, 2],
            )  # fmt: skip
        )
    )
    assert "one entry per query (1)" in execution.tasks["t"].error


# --------------------------------------------------------------------------- migrations

MIGRATIONS = {
    # Each row records how many rows were there before it: the order the files ran in.
    "001_create.sql": "CREATE TABLE log (name TEXT, pos INTEGER);\n"
    "INSERT INTO log (name, pos) SELECT 'a', count(*) FROM log;\n",
    "010_c.sql": "INSERT INTO log (name, pos) SELECT 'c', count(*) FROM log;",
    "002_b.sql": "-- a comment; with a semicolon\n"
    "INSERT INTO log (name, pos) SELECT 'b', count(*) FROM log;",
    "notes.txt": "not a migration",
}


def write_migrations(folder: Path, files: dict[str, str]) -> None:
    folder.mkdir(exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text)


def migrate(db: Db, run_workflow, **options: Any):
    execution = run_workflow(
        make_workflow(
            task("m", db.url, operation="migration", migrations_path="migrations", **options)
        )
    )
    return execution.tasks["m"]


def test_migrations_apply_in_name_order_and_a_rerun_applies_only_new_files(
    db, project, run_workflow
):
    write_migrations(project / "migrations", MIGRATIONS)
    first = migrate(db, run_workflow)
    assert first.status is State.SUCCEEDED, first.error
    assert first.result == {
        "applied": ["001_create.sql", "002_b.sql", "010_c.sql"],
        "already_applied": [],
    }
    assert first.outputs == {"applied": 3}
    assert any(line.startswith("applied 002_b.sql in ") for line in first.log_tail)
    assert db.query("SELECT name, pos FROM log ORDER BY pos") == [("a", 0), ("b", 1), ("c", 2)]

    write_migrations(project / "migrations", {"011_d.sql": "INSERT INTO log VALUES ('d', 3);"})
    second = migrate(db, run_workflow)
    assert second.result == {
        "applied": ["011_d.sql"],
        "already_applied": ["001_create.sql", "002_b.sql", "010_c.sql"],
    }
    assert db.query("SELECT count(*) FROM log") == [(4,)]
    recorded = db.query("SELECT name, checksum FROM jupyter_workflows_migrations ORDER BY name")
    assert [name for name, _ in recorded] == [
        "001_create.sql",
        "002_b.sql",
        "010_c.sql",
        "011_d.sql",
    ]
    assert all(len(checksum) == 64 for _, checksum in recorded)


def test_a_failing_migration_is_rolled_back_and_named(db, project, run_workflow):
    write_migrations(
        project / "migrations",
        {
            "001_one.sql": "CREATE TABLE one (x INTEGER);",
            "002_two.sql": "CREATE TABLE two (x INTEGER);\nINSERT INTO two VALUES (1);\n"
            "INSERT INTO missing_table VALUES (1);\n",
            "003_three.sql": "CREATE TABLE three (x INTEGER);",
        },
    )
    failed = migrate(db, run_workflow)
    assert failed.status is State.FAILED and failed.exit_code == 1
    assert failed.error.startswith("migration 002_two.sql failed: ")
    assert "missing_table" in failed.error and "(line 3)" in failed.error
    assert failed.error.endswith("rolled back; applied before it in this run: 001_one.sql")
    tables = db.tables()
    assert "one" in tables and "two" not in tables and "three" not in tables
    assert db.query("SELECT name FROM jupyter_workflows_migrations") == [("001_one.sql",)]

    (project / "migrations" / "002_two.sql").write_text("CREATE TABLE two (x INTEGER);")
    fixed = migrate(db, run_workflow)
    assert fixed.result["applied"] == ["002_two.sql", "003_three.sql"]
    assert {"one", "two", "three"} <= db.tables()


def test_a_changed_applied_migration_is_a_warning_not_a_rerun(db, project, run_workflow):
    write_migrations(project / "migrations", {"001_t.sql": "CREATE TABLE t (x INTEGER);"})
    assert migrate(db, run_workflow).status is State.SUCCEEDED
    (project / "migrations" / "001_t.sql").write_text("CREATE TABLE t (x INTEGER, y INTEGER);")
    again = migrate(db, run_workflow)
    assert again.status is State.SUCCEEDED and again.result["applied"] == []
    warnings = [line for line in again.log_tail if line.startswith("warning: 001_t.sql changed")]
    assert len(warnings) == 1 and "not applied again" in warnings[0]


def test_sqlite_migration_statements_end_where_sqlite_ends_them(project, run_workflow):
    # ';' inside a string, a comment and a trigger body do not end a statement; the failing
    # last statement undoes the table and the trigger created before it.
    write_migrations(
        project / "migrations",
        {
            "001_trigger.sql": "CREATE TABLE t (x TEXT);\n"
            "CREATE TABLE audit (x TEXT);\n"
            "-- note; not a statement\n"
            "CREATE TRIGGER keep AFTER INSERT ON t BEGIN\n"
            "  INSERT INTO audit VALUES (new.x || ';');\n"
            "END;\n"
            "INSERT INTO t VALUES ('a;b');\n"
            "INSERT INTO nowhere VALUES (1);\n"
        },
    )
    url = "sqlite:///app.db"
    failed = run_workflow(
        make_workflow(task("m", url, operation="migration", migrations_path="migrations"))
    ).tasks["m"]
    assert "no such table: nowhere (line 8)" in failed.error
    with sqlite3.connect(project / "app.db") as conn:
        names = {
            r[0]
            for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type IN ('table', 'trigger')"
            ).fetchall()
        }
    assert names == {"jupyter_workflows_migrations"}

    migrations = project / "migrations" / "001_trigger.sql"
    migrations.write_text(migrations.read_text().replace("INSERT INTO nowhere VALUES (1);\n", ""))
    done = run_workflow(
        make_workflow(task("m", url, operation="migration", migrations_path="migrations"))
    ).tasks["m"]
    assert done.status is State.SUCCEEDED, done.error
    with sqlite3.connect(project / "app.db") as conn:
        assert conn.execute("SELECT x FROM audit").fetchall() == [("a;b;",)]


def test_a_missing_migrations_folder_is_named(project, run_workflow):
    execution = run_workflow(
        make_workflow(
            task("m", "sqlite:///app.db", operation="migration", migrations_path="db/migrations")
        )
    )
    m = execution.tasks["m"]
    assert m.status is State.FAILED
    assert m.error == f"migrations folder {project / 'db' / 'migrations'} does not exist"


# --------------------------------------------------------------------------- connections


def test_connection_is_templated_from_the_environment(project, run_workflow):
    workflow = make_workflow(
        task("q", "${env.DATABASE_URL}", query="SELECT 42 AS answer"),
    )
    found = run_workflow(workflow, env={"DATABASE_URL": "sqlite:///data.db"})
    assert found.tasks["q"].result == [{"answer": 42}]
    assert (project / "data.db").is_file()  # relative to the project root
    empty = run_workflow(workflow, env={"DATABASE_URL": ""})
    assert empty.tasks["q"].error == (
        "database connection is empty: '${env.DATABASE_URL}' rendered to ''"
    )


def test_bad_connections_fail_with_one_clear_message(project, run_workflow):
    absolute = project / "abs.db"  # the absolute form (outside the project: test_path_escapes)
    execution = run_workflow(
        make_workflow(
            task("scheme", "mysql://root:hunter22@localhost/app", query="SELECT 1"),
            task("refused", "postgresql://user:hunter22@127.0.0.1:1/db", query="SELECT 1"),
            task("host", "sqlite://data/app.db", query="SELECT 1"),
            task("folder", "duckdb:///no/such/folder/x.duckdb", query="SELECT 1"),
            task("absolute", f"sqlite:///{absolute}", query="SELECT 1 AS one"),
            task("memory", "sqlite:///:memory:", query="SELECT 2 AS two"),
        )
    )
    errors = {tid: t.error for tid, t in execution.tasks.items()}
    assert errors["scheme"] == (
        "unknown connection scheme 'mysql' in database connection: "
        "expected sqlite, duckdb or postgresql"
    )
    assert errors["refused"] == (
        "cannot connect to postgresql://user:***@127.0.0.1:1/db: connection refused"
    )
    assert "sqlite:///data/app.db" in errors["host"]
    assert errors["folder"] == (
        f"cannot open duckdb:///no/such/folder/x.duckdb: folder {project / 'no/such/folder'}"
        " does not exist"
    )
    assert execution.tasks["absolute"].result == [{"one": 1}] and absolute.is_file()
    assert execution.tasks["memory"].result == [{"two": 2}]
    assert not any("hunter22" in str(t.error) + str(t.log_tail) for t in execution.tasks.values())


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://u:pw@h:5432/db", "postgresql://u:***@h:5432/db"),
        ("postgres://u:p@ss/w@h/db?sslmode=require", "postgres://u:***@h/db?sslmode=require"),
        ("postgresql://u@h/db", "postgresql://u@h/db"),
        (
            "postgresql://h/db?user=u&password=pw&sslmode=require",
            "postgresql://h/db?user=u&password=***&sslmode=require",
        ),  # fmt: skip
        ("host=h user=u password='a b' dbname=d", "host=h user=u password=*** dbname=d"),
        ("sqlite:///data/app.db", "sqlite:///data/app.db"),
    ],
)
def test_redact_hides_every_password_form(url, shown):
    assert redact(url) == shown


# --------------------------------------------------------------------------- cancellation


def test_a_timeout_interrupts_the_running_statement(db, run_workflow):
    started = time.monotonic()
    execution = run_workflow(
        make_workflow(task("slow", db.url, query=db.long_query, timeout="500ms")), kill_grace=2.0
    )
    elapsed = time.monotonic() - started
    slow = execution.tasks["slow"]
    assert slow.status is State.TIMED_OUT and "timed out" in slow.error
    assert elapsed < 1.5  # not the 2 s kill_grace: the statement really stopped
    if db.kind == "postgresql":  # stopped on the server, not just abandoned by the client
        active = db.query(
            "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep%'"
        )
        assert active == [(0,)]
    else:  # the file is free again: the worker closed its connection
        assert db.query("SELECT 1") == [(1,)]


# --------------------------------------------------------------------------- secrets


def test_postgres_password_never_reaches_logs_errors_results_or_the_store(postgres, project):
    url = fresh_database(postgres, "secrets_" + uuid.uuid4().hex[:8])
    wrong = postgres.url(password="Wr0ng-Passw0rd")
    malformed = f"postgresql://{TEST_USER}:{quote(TEST_PASSWORD, safe='')}@[::1/db"
    write_migrations(
        project / "migrations",
        {
            "001_ok.sql": "CREATE TABLE t (x INTEGER);",
            "002_bad.sql": "INSERT INTO nope VALUES (1);",
        },
    )
    workflow = {
        "name": "secrets",
        "tasks": [
            task("who", "${env.DATABASE_URL}", query="SELECT current_user AS who"),
            task(
                "migrate",
                "${env.DATABASE_URL}",
                operation="migration",
                migrations_path="migrations",
            ),
            task("wrong", wrong, query="SELECT 1"),
            task("malformed", malformed, query="SELECT 1"),
        ],
    }
    write_workflow(project, workflow)
    ran = cli(project, "run", "wf.json", env={"DATABASE_URL": url})
    assert ran.returncode == 1, ran.stderr
    execution_id = json.loads(cli(project, "history", "--json").stdout)[0]["id"]
    detail = cli(project, "status", execution_id, "--json").stdout
    text = cli(project, "status", execution_id).stdout
    tasks = {t["id"]: t for t in json.loads(detail)["tasks"]}

    assert tasks["who"]["result"] == [{"who": TEST_USER}]
    assert tasks["migrate"]["error"].startswith("migration 002_bad.sql failed: ")
    assert tasks["wrong"]["error"] == (
        f"cannot connect to postgresql://{TEST_USER}:***@127.0.0.1:{postgres.port}/"
        f'jw_test: password authentication failed for user "{TEST_USER}"'
    )
    assert "***" in tasks["malformed"]["error"]  # libpq echoes the URL: scrubbed
    assert f"connected to postgresql://{TEST_USER}:***@127.0.0.1" in text  # logs are there

    store = default_store_path(project)
    logs = [line.line for line in ExecutionStore(store).logs(execution_id)]
    journals = "".join(
        p.read_text() for p in store.rglob("*") if p.is_file() and p.suffix != ".duckdb"
    )
    assert logs and journals
    everything = "\n".join([ran.stdout, ran.stderr, detail, text, journals, *logs])
    for secret in (TEST_PASSWORD, quote(TEST_PASSWORD, safe=""), "Wr0ng-Passw0rd"):
        assert secret not in everything
