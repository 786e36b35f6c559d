"""Task caching through the real ``workflow`` command: when a cached result is reused."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from tests.cli.test_resume import _counted, runs, tasks_of
from tests.conftest import cli, write_workflow


def pipeline(cache: Any = None, key: str | None = None) -> dict[str, Any]:
    """up -> cached (reads data/*.csv) -> down; the cached task's result is its input's text."""
    config = cache if cache is not None else {"inputs": ["data/*.csv"]}
    if key is not None:
        config = {**config, "key": key}
    return {
        "name": "pipe",
        "tasks": [
            _counted("up", "cat up.txt"),
            _counted(
                "cached",
                "cat data/in.csv; echo ${tasks.up.result}",
                depends_on=["up"],
                cache=config,
            ),  # fmt: skip
            _counted(
                "down", "echo down-${tasks.cached.result}", depends_on=["cached"], cache=True
            ),  # fmt: skip
        ],
    }


@pytest.fixture
def piped(project: Path) -> Path:
    (project / "data").mkdir()
    (project / "data" / "in.csv").write_text("1,2\n")
    (project / "up.txt").write_text("U1\n")
    write_workflow(project, pipeline())
    first = cli(project, "run", "wf.json")
    assert first.returncode == 0, first.stderr
    assert runs(project, "cached") == 1
    return project


def latest(project: Path) -> dict[str, Any]:
    rows = json.loads(cli(project, "history", "--json", "--limit", "1").stdout)
    return json.loads(cli(project, "status", rows[0]["id"], "--json").stdout)


def test_an_unchanged_task_is_a_cache_hit_with_its_recorded_result(piped: Path) -> None:
    first = latest(piped)
    result = cli(piped, "run", "wf.json")
    assert result.returncode == 0, result.stderr
    assert (runs(piped, "up"), runs(piped, "cached"), runs(piped, "down")) == (2, 1, 1)
    assert "cached: reused from execution" in result.stdout and "2 cached" in result.stdout
    tasks = tasks_of(latest(piped))
    assert tasks["cached"]["reused"] == "cached"
    assert tasks["cached"]["reused_from"] == first["id"]
    assert tasks["down"]["result"] == "down-1,2\nU1"
    assert "cached" in cli(piped, "status", latest(piped)["id"]).stdout


@pytest.mark.parametrize(
    ("change", "ran"),
    [
        ("input", (2, 2, 2)),  # a file its inputs glob matches changed
        ("new input", (2, 2, 2)),  # one more file matches
        ("upstream", (2, 2, 2)),  # an upstream task's result changed
        ("definition", (2, 2, 2)),  # its own command changed
        ("unrelated", (2, 1, 1)),  # a file outside its inputs changed
        ("no-cache", (2, 2, 2)),
        ("refresh down", (2, 1, 2)),
    ],
)
def test_the_cache_misses_when_what_the_task_computes_from_changes(
    piped: Path, change: str, ran: tuple[int, int, int]
) -> None:
    args: list[str] = []
    if change == "input":
        (piped / "data" / "in.csv").write_text("3,4\n")
    elif change == "new input":
        (piped / "data" / "more.csv").write_text("5\n")
    elif change == "upstream":
        (piped / "up.txt").write_text("U2\n")
    elif change == "definition":
        data = pipeline()
        data["tasks"][1]["command"] += " # v2"
        write_workflow(piped, data)
    elif change == "unrelated":
        (piped / "data" / "notes.txt").write_text("not a csv\n")
    elif change == "no-cache":
        args = ["--no-cache"]
    else:
        args = ["--refresh", "down"]
    result = cli(piped, "run", "wf.json", *args)
    assert result.returncode == 0, result.stderr
    assert (runs(piped, "up"), runs(piped, "cached"), runs(piped, "down")) == ran
    # A run that missed recorded its result: the next identical run hits.
    cli(piped, "run", "wf.json")
    assert (runs(piped, "cached"), runs(piped, "down")) == ran[1:]


def test_the_key_expression_is_part_of_the_cache_key(project: Path) -> None:
    (project / "data").mkdir()
    (project / "data" / "in.csv").write_text("1\n")
    (project / "up.txt").write_text("U\n")
    write_workflow(project, pipeline(key="${env.DAY}"))
    for day, expected in (("mon", 1), ("mon", 1), ("tue", 2), ("mon", 2)):
        assert cli(project, "run", "wf.json", "--env", f"DAY={day}").returncode == 0
        assert runs(project, "cached") == expected, day


def test_an_expired_entry_is_not_reused(project: Path) -> None:
    (project / "data").mkdir()
    (project / "data" / "in.csv").write_text("1\n")
    (project / "up.txt").write_text("U\n")
    write_workflow(project, pipeline(cache={"inputs": ["data/*.csv"], "expire": "2s"}))
    cli(project, "run", "wf.json")
    cli(project, "run", "wf.json")
    assert runs(project, "cached") == 1
    time.sleep(2.5)
    cli(project, "run", "wf.json")
    assert runs(project, "cached") == 2


def test_a_failed_run_records_no_entry(project: Path) -> None:
    write_workflow(
        project,
        {"name": "flaky", "tasks": [_counted("t", "test -f ok && echo fine", cache=True)]},
    )
    assert cli(project, "run", "wf.json").returncode == 1
    (project / "ok").touch()
    assert cli(project, "run", "wf.json").returncode == 0
    assert cli(project, "run", "wf.json").returncode == 0
    assert runs(project, "t") == 2


def test_cache_ls_and_clear(piped: Path) -> None:
    entries = json.loads(cli(piped, "cache", "ls", "--json").stdout)
    assert {(e["workflow"], e["task_id"]) for e in entries} == {
        ("pipe", "cached"),
        ("pipe", "down"),
    }
    assert "cached" in cli(piped, "cache", "ls").stdout
    cleared = cli(piped, "cache", "clear", "--workflow", "pipe", "--task", "down")
    assert cleared.returncode == 0 and "cleared 1 cache entry" in cleared.stdout
    assert [e["task_id"] for e in json.loads(cli(piped, "cache", "ls", "--json").stdout)] == [
        "cached"
    ]
    cli(piped, "run", "wf.json")
    assert (runs(piped, "cached"), runs(piped, "down")) == (1, 2)
    assert "cleared 2 cache entries" in cli(piped, "cache", "clear").stdout
    assert cli(piped, "cache", "ls").stdout.strip() == "no cache entries"


def test_a_clear_survives_a_rebuilt_index(piped: Path) -> None:
    """Entries come from the journals; the clear is kept beside them, so rebuilding the index
    from every journal does not bring a cleared entry back."""
    assert cli(piped, "cache", "clear").returncode == 0
    (piped / "workflows" / ".executions" / "index.duckdb").unlink()
    assert json.loads(cli(piped, "cache", "ls", "--json").stdout) == []
    cli(piped, "run", "wf.json")
    assert runs(piped, "cached") == 2


def test_cached_tasks_are_not_runs_in_task_metrics(piped: Path) -> None:
    cli(piped, "run", "wf.json")
    report = json.loads(cli(piped, "monitor", "--json").stdout)
    metrics = {t["task_id"]: t for t in report["tasks"]}
    assert metrics["cached"]["runs"] == 1 and metrics["cached"]["reused"] == 1
    assert metrics["up"]["runs"] == 2 and metrics["up"]["reused"] == 0
