"""Run progress as the terminal shows it: plain lines in pipes, a live table on a terminal."""

from __future__ import annotations

import io
import json
import re
import socket
from pathlib import Path

from rich.console import Console

from jupyter_workflows.cli.render import LiveRenderer
from jupyter_workflows.engine import WorkflowOrchestrator
from jupyter_workflows.project import default_store_path
from jupyter_workflows.store import ExecutionStore
from jupyter_workflows.ui.text import PlainRenderer
from tests.conftest import cli, make_workflow
from tests.store.helpers import TaskPlan, write_run


def _workflow():
    return make_workflow(
        {"id": "fetch", "type": "shell", "command": "echo fetched", "live_output": True},
        {"id": "quiet", "type": "shell", "command": "echo hidden", "depends_on": ["fetch"]},
        {"id": "broken", "type": "shell", "command": "echo reason >&2; exit 2"},
    )


def test_plain_renderer_prints_one_line_per_event_and_a_summary(project):
    out = io.StringIO()
    renderer = PlainRenderer(out)
    execution = WorkflowOrchestrator(project, sinks=[renderer]).execute(
        _workflow(), raise_on_failure=False
    )
    renderer.close(execution)
    text = out.getvalue()
    assert "fetch | fetched" in text  # live_output streams
    assert "hidden" not in text.split("--- last output")[0]  # others do not
    assert "✗ broken failed" in text and "exited with code 2: reason" in text
    assert "--- last output of broken ---" in text
    assert "workflow 'test' failed" in text and execution.id in text


def test_live_renderer_draws_the_task_table_on_a_terminal(project):
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, width=120, color_system=None)
    renderer = LiveRenderer(console)
    execution = WorkflowOrchestrator(project, sinks=[renderer]).execute(
        _workflow(), raise_on_failure=False
    )
    renderer.close(execution)
    text = buffer.getvalue()
    assert "fetch | fetched" in text
    for task_id, state in (("fetch", "succeeded"), ("quiet", "succeeded"), ("broken", "failed")):
        assert any(task_id in line and state in line for line in text.splitlines()), task_id
    assert "workflow 'test' failed" in text


def test_children_are_listed_under_their_parent():
    from jupyter_workflows.execution.records import TaskRecord
    from jupyter_workflows.ui.text import as_tree

    tasks = [
        TaskRecord(id="a"),
        TaskRecord(id="loop[0]", parent="loop"),
        TaskRecord(id="loop"),
        TaskRecord(id="loop[0].then", parent="loop[0]"),
        TaskRecord(id="orphan", parent="gone"),
    ]
    assert [(d, t.id) for d, t in as_tree(tasks)] == [
        (0, "a"),
        (0, "loop"),
        (1, "loop[0]"),
        (2, "loop[0].then"),
        (0, "orphan"),
    ]


# -- where tasks ran: `workflow status` and `workflow history` ------------------------------

W1, W2 = "tcp://10.0.0.7:40123", "tcp://10.0.0.8:40555"
CLUSTER, DASHBOARD = "tcp://10.0.0.5:8786", "http://10.0.0.5:8787/status"


def _project_store(project: Path) -> ExecutionStore:
    return ExecutionStore(default_store_path(project))


def _table_rows(text: str) -> dict[str, list[str]]:
    """The cells of a piped table's rows (columns two or more spaces apart), by their first
    cell (header included); the cells read here are never empty."""
    rows = {}
    for line in text.splitlines():
        cells = re.split(r"\s{2,}", line.strip())
        if len(cells) > 1:
            rows[cells[0]] = cells
    return rows


def test_status_says_which_worker_each_task_ran_on(project: Path) -> None:
    write_run(
        _project_store(project),
        "dask-run-1",
        executor="dask",
        cluster=CLUSTER,
        dashboard=DASHBOARD,
        tasks=[
            TaskPlan("a", attempts=2, placed=[("dask", W1, "node-7"), ("dask", W2, "node-8")]),
            TaskPlan("b", placed=[("dask", W1, "node-7")]),
        ],
    )
    result = cli(project, "status", "dask-run")
    assert result.returncode == 0, result.stderr
    assert f"tasks run on dask at {CLUSTER} (dashboard: {DASHBOARD})" in result.stdout
    rows = _table_rows(result.stdout)
    assert rows["task"][:5] == ["task", "type", "status", "attempts", "where"]
    assert rows["a"][3:5] == ["2", W2]  # the last attempt's worker
    assert rows["b"][3:5] == ["1", W1]
    detail = json.loads(cli(project, "status", "dask-run", "--json").stdout)
    assert (detail["executor"], detail["cluster"], detail["dashboard"]) == (
        "dask",
        CLUSTER,
        DASHBOARD,
    )
    attempts = detail["tasks"][0]["attempts"]
    assert [(a["executor"], a["worker"], a["host"]) for a in attempts] == [
        ("dask", W1, "node-7"),
        ("dask", W2, "node-8"),
    ]
    history = cli(project, "history")
    assert _table_rows(history.stdout)["execution"][-1] == "executor"
    assert _table_rows(history.stdout)["dask-run"][-1] == "dask"
    assert json.loads(cli(project, "history", "--json").stdout)[0]["executor"] == "dask"


def test_a_local_run_keeps_the_status_table_as_it_was(project: Path) -> None:
    (project / "wf.json").write_text(
        json.dumps({"name": "here", "tasks": [{"id": "a", "type": "shell", "command": "true"}]})
    )
    assert cli(project, "run", "wf.json").returncode == 0
    execution_id = json.loads(cli(project, "history", "--json").stdout)[0]["id"]
    result = cli(project, "status", execution_id)
    assert result.returncode == 0, result.stderr
    rows = _table_rows(result.stdout)
    assert rows["task"] == ["task", "type", "status", "attempts", "duration", "exit", "error"]
    assert "tasks run on" not in result.stdout
    assert "executor" not in _table_rows(cli(project, "history").stdout)["execution"]
    # The record still says where it ran.
    detail = json.loads(cli(project, "status", execution_id, "--json").stdout)
    attempt = detail["tasks"][0]["attempts"][0]
    assert (attempt["executor"], attempt["worker"], attempt["host"]) == (
        "local",
        None,
        socket.gethostname(),
    )
    assert (detail["executor"], detail["cluster"]) == ("local", None)


def test_a_local_run_on_another_machine_says_which(project: Path) -> None:
    write_run(
        _project_store(project),
        "far-1",
        host="build-box",
        tasks=[TaskPlan("a", placed=[("local", None, "build-box")])],
    )
    rows = _table_rows(cli(project, "status", "far-1").stdout)
    assert rows["task"][4] == "where" and rows["a"][4] == "build-box"


def test_a_crashed_or_cancelled_run_says_why_and_a_failed_one_does_not_repeat_itself() -> None:
    from jupyter_workflows.execution.records import Execution
    from jupyter_workflows.execution.states import State
    from jupyter_workflows.ui.text import summary_lines

    crashed = Execution(id="r", workflow="w", status=State.CRASHED, error="no scheduler at x")
    assert summary_lines(crashed)[-2:-1] == ["crashed: no scheduler at x"]
    failed = Execution(id="r", workflow="w", status=State.FAILED, error="failed task(s): a")
    assert not any("failed task(s)" in line for line in summary_lines(failed))


def test_every_option_of_every_command_says_what_it_does() -> None:
    import click

    from jupyter_workflows.cli import main

    silent = []

    def walk(command: click.Command, path: list[str]) -> None:
        if isinstance(command, click.Group):  # the lazy ones too: get_command imports them
            ctx = click.Context(command)
            for name in command.list_commands(ctx):
                sub = command.get_command(ctx, name)
                assert sub is not None, f"{' '.join(path)} lists {name} and has none"
                walk(sub, [*path, name])
        for param in command.params:
            if isinstance(param, click.Option) and not param.hidden and not param.help:
                silent.append(f"{' '.join(path)} {param.opts[0]}")

    walk(main, ["workflow"])
    assert silent == []


def test_a_notebook_tasks_executed_notebook_is_named_when_it_ends(project: Path) -> None:
    notebook = {
        "cells": [{"cell_type": "code", "metadata": {}, "execution_count": None,
                   "outputs": [], "source": ["raise ValueError('boom')"]}],
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3",
                                    "language": "python"}},
        "nbformat": 4, "nbformat_minor": 5,
    }  # fmt: skip
    (project / "fails.ipynb").write_text(json.dumps(notebook))
    (project / "wf.json").write_text(json.dumps({"name": "nb", "tasks": [
        {"id": "report", "type": "notebook", "notebook": "fails.ipynb"}]}))  # fmt: skip
    ran = cli(project, "run", "wf.json", "--no-alerts", "--timestamps")
    assert ran.returncode == 1
    lines = ran.stdout.splitlines()
    failed = next(i for i, line in enumerate(lines) if "✗ report failed" in line)
    shown = lines[failed + 1].split(" ", 1)[1]  # after its timestamp
    assert shown.startswith("  executed notebook: ")
    path = Path(shown.split(": ", 1)[1])
    assert path.is_file() and "boom" in path.read_text()  # where the error is to be read
