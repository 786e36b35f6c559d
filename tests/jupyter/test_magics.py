"""The %workflow magics in a real IPython shell (and a real kernel), running real workflows."""

from __future__ import annotations

import asyncio
import copy
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell

from jupyter_workflows.errors import WorkflowFailed
from jupyter_workflows.execution.states import State
from jupyter_workflows.jupyter.background import BackgroundRun
from jupyter_workflows.jupyter.display import ExecutionView, HealthView, HistoryView, ReportView
from jupyter_workflows.store import ExecutionStore, default_store_path
from tests.conftest import write_workflow
from tests.store.helpers import TaskPlan, write_run

HEAVY = (
    "pydantic", "duckdb", "anywidget", "ipywidgets", "altair", "pandas", "yaml",
    "jupyter_workflows.engine", "jupyter_workflows.definition.model", "jupyter_workflows.store",
)  # fmt: skip

GREET = {
    "name": "greet",
    "tasks": [
        {"id": "hello", "type": "shell", "command": "echo ${env.GREETING}"},
        {
            "id": "shout",
            "type": "shell",
            "command": "echo '${tasks.hello.result}' ${env.WHO}",
            "depends_on": ["hello"],
        },
    ],
}


def one_task(command: str, name: str = "one") -> dict[str, Any]:
    """A workflow of one shell task, ``nap``."""
    return {"name": name, "tasks": [{"id": "nap", "type": "shell", "command": command}]}


def sleepy(seconds: str) -> dict[str, Any]:
    """A workflow whose one task sleeps; ``seconds`` doubles as a marker to find the process."""
    return one_task(f"sleep {seconds}", name="sleepy")


@pytest.fixture(scope="module")
def shell() -> InteractiveShell:
    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "jupyter_workflows.jupyter.magics")
    return shell


@pytest.fixture
def ip(shell: InteractiveShell, project: Path, monkeypatch: pytest.MonkeyPatch) -> InteractiveShell:
    monkeypatch.chdir(project)  # the project root is found from the kernel's cwd
    return shell


def store(root: Path) -> ExecutionStore:
    return ExecutionStore(default_store_path(root))


def cell(ip: InteractiveShell, code: str) -> Any:
    """Run ``code`` as a cell, as a user would; return what ``_`` holds after it."""
    ip.user_ns.pop("_", None)
    result = ip.run_cell(code, store_history=True)
    if result.error_before_exec or result.error_in_exec:
        raise result.error_before_exec or result.error_in_exec
    return ip.user_ns.get("_")


def processes(marker: str) -> list[int]:
    """Pids whose command line contains ``marker`` (a task's unique sleep length)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if marker in cmdline and "pytest" not in cmdline:
                found.append(int(entry.name))
    return found


def wait_for(predicate: Any, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)


def wait_until_running(marker: str, timeout: float = 30.0) -> None:
    """Until the task's process exists and its start is over: a cancel that lands while the
    process is being spawned currently waits for the process to end (tasks/process.py,
    reported), which is not what these tests are about."""
    wait_for(lambda: processes(marker), timeout)
    time.sleep(0.3)


# -- loading --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["jupyter_workflows", "jupyter_workflows.jupyter.magics"])
def test_load_ext_is_fast_and_imports_nothing_heavy(name: str) -> None:
    code = f"""
import json, sys, time
from IPython.core.interactiveshell import InteractiveShell
s = InteractiveShell.instance()
t = time.perf_counter()
s.run_line_magic("load_ext", {name!r})
took = time.perf_counter() - t
print(json.dumps({{"took": took, "heavy": [m for m in {HEAVY!r} if m in sys.modules],
                  "magics": sorted(k for k in ("line", "cell")
                                   if "workflow" in s.magics_manager.magics[k])}}))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["magics"] == ["cell", "line"]
    assert result["heavy"] == []
    assert result["took"] < 0.5


# -- %workflow run --------------------------------------------------------------------------


def test_run_returns_the_execution_into_underscore(ip: InteractiveShell, project: Path) -> None:
    write_workflow(project, GREET)
    view = cell(ip, "%workflow run wf.json --env GREETING=hi,WHO=there --max-parallel 1")
    assert isinstance(view, ExecutionView)
    assert view.status is State.SUCCEEDED  # attributes reach the Execution
    assert view.tasks["shout"].result == "hi there"
    recorded = store(project).get_execution(view.execution.id)
    assert recorded.status is State.SUCCEEDED
    assert recorded.file == str(project / "wf.json")  # resolved against the working directory
    text = repr(view)
    assert "workflow 'greet'" in text and "succeeded" in text and "shout" in text
    assert "tasks" in dir(view)  # tab completion reaches the Execution's attributes
    assert copy.copy(view).execution is view.execution


def test_project_root_option_keeps_history_there_while_files_stay_relative_to_the_cwd(
    ip: InteractiveShell, project: Path, tmp_path: Path
) -> None:
    other = tmp_path / "other"
    other.mkdir()
    write_workflow(project, one_task("pwd"))
    view = cell(ip, f"%workflow run wf.json --project-root {other}")
    assert view.status is State.SUCCEEDED
    assert view.tasks["nap"].result == str(other)  # tasks run in the project root
    assert store(other).history()[0].id == view.execution.id
    assert store(project).history() == []


def test_in_a_sub_folder_the_project_is_found_above(
    ip: InteractiveShell, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (project / "workflows" / "definitions").mkdir(parents=True)
    write_workflow(project / "workflows" / "definitions", one_task("pwd"))
    notebooks = project / "notebooks"
    notebooks.mkdir()
    monkeypatch.chdir(notebooks)  # a kernel started for notebooks/x.ipynb
    view = cell(ip, "%workflow run ../workflows/definitions/wf.json")
    assert view.tasks["nap"].result == str(project)
    history = cell(ip, "%workflow history")
    assert [row["id"] for row in history.rows] == [view.execution.id]
    assert sorted(os.listdir(notebooks)) == []


def test_read_only_magics_in_an_empty_folder_create_nothing(
    ip: InteractiveShell, project: Path
) -> None:
    assert cell(ip, "%workflow history").rows == []
    assert cell(ip, "%workflow monitor") is not None
    with pytest.raises(UsageError, match="no execution with id"):
        ip.run_line_magic("workflow", "status abc")
    assert os.listdir(project) == []


def test_html_escapes_names_and_shows_task_ids_and_states(
    ip: InteractiveShell, project: Path
) -> None:
    write_workflow(
        project,
        {
            "name": "x<y>",
            "tasks": [
                {"id": "ok", "name": "<script>alert(1)</script>", "type": "shell",
                 "command": "echo '<b>'"},
                {"id": "bad", "type": "shell", "command": "exit 3"},
            ],
        },
    )  # fmt: skip
    view = cell(ip, "%workflow run wf.json --no-raise")  # a failed run, to look at
    page = view._repr_html_()
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "x&lt;y&gt;" in page and "&lt;b&gt;" in page and "<b>" not in page
    assert ">ok (&lt;script&gt;alert(1)&lt;/script&gt;)<" in page and ">bad<" in page
    for word in (">succeeded<", ">failed<", ">exited with code 3<"):
        assert word in page
    assert "<script>alert(1)</script>" in repr(view)  # text is shown as it is


def test_invalid_definition_is_a_usage_error_and_runs_nothing(
    ip: InteractiveShell, project: Path
) -> None:
    (project / "bad.yaml").write_text(
        "name: bad\ntasks:\n  - id: a\n    type: shell\n    command: echo\n    colour: red\n"
    )
    with pytest.raises(UsageError, match=r"bad.yaml:6:5, task 'a', field 'colour': unknown field"):
        ip.run_line_magic("workflow", "run bad.yaml")
    assert not (default_store_path(project) / "journals").exists()


USAGE_ERRORS = [
    ("", "a subcommand is needed"),
    ("frobnicate wf.json", "unknown subcommand 'frobnicate'"),
    ("run", "required: FILE\nusage: %workflow run"),
    ("run wf.json --bogus", "unrecognized arguments: --bogus\nusage: %workflow run"),
    ("run wf.json --env =1", "bad --env value '=1'"),
    ("run wf.json --env NOEQUALS", "bad --env value 'NOEQUALS'"),
    ("run wf.json --max-parallel 0", "--max-parallel must be at least 1"),
    ("run wf.json --max-parallel many", "invalid int value: 'many'\nusage: %workflow run"),
    ('run "wf.json', "No closing quotation"),
    ("run missing.json", "missing.json: no such workflow file"),
    ("run wf.json --project-root /no/such/dir", "project root /no/such/dir is not a directory"),
    ("history --limit 0", "--limit must be at least 1"),
    ("history --status sleeping", "unknown --status 'sleeping'"),
    ("status", "required: ID\nusage: %workflow status"),
    ("status deadbeef", "no execution with id 'deadbeef'"),
    ("monitor --verbose", "unrecognized arguments: --verbose\nusage: %workflow monitor"),
]


@pytest.mark.parametrize(("line", "message"), USAGE_ERRORS)
def test_bad_input_raises_usage_error(
    ip: InteractiveShell, project: Path, line: str, message: str
) -> None:
    write_workflow(project, GREET)
    with pytest.raises(UsageError) as caught:
        ip.run_line_magic("workflow", line)
    assert message in str(caught.value)


def test_without_the_widget_the_run_prints_plain_lines(
    ip: InteractiveShell,
    project: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setitem(sys.modules, "jupyter_workflows.jupyter.widget", None)  # import fails
    write_workflow(project, one_task("echo plain"))
    view = cell(ip, "%workflow run wf.json")
    assert view.status is State.SUCCEEDED
    out = capsys.readouterr().out
    assert "workflow 'one' started" in out and "nap succeeded" in out


def test_usage_error_shows_a_message_not_a_traceback(
    ip: InteractiveShell, project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    result = ip.run_cell("%workflow run missing.json")
    assert isinstance(result.error_in_exec, UsageError)
    shown = capsys.readouterr()
    output = shown.out + shown.err
    assert "UsageError: " in output and "no such workflow file" in output
    assert "Traceback" not in output and "magics.py" not in output


def test_help_lists_every_subcommand(shell: InteractiveShell) -> None:
    doc = shell.find_line_magic("workflow").__doc__
    for usage in ("%workflow run", "%workflow validate", "%workflow history", "%workflow status",
                  "%workflow monitor", "%%workflow"):  # fmt: skip
        assert usage in doc


# -- validate, history, status, monitor -----------------------------------------------------


def test_validate_reports_problems_with_lines(ip: InteractiveShell, project: Path) -> None:
    write_workflow(project, GREET)
    good = cell(ip, "%workflow validate wf.json")
    assert isinstance(good, ReportView) and good.ok
    assert "wf.json: valid" in repr(good)
    (project / "bad.yaml").write_text(
        "name: bad\ntasks:\n  - id: a\n    type: shel\n    command: echo\n"
        "  - id: b\n    type: shell\n    command: echo\n    depends_on: [zzz]\n"
    )
    bad = cell(ip, "%workflow validate bad.yaml --no-raise")
    assert not bad.ok
    assert [(p.line, p.task_id) for p in bad.problems] == [(4, "a"), (9, "b")]
    assert "unknown task type 'shel'" in repr(bad) and "zzz" in bad._repr_html_()
    missing = cell(ip, "%workflow validate nope.json --no-raise")
    assert not missing.ok and "no such workflow file" in repr(missing)


def test_validate_of_a_bad_file_raises(ip: InteractiveShell, project: Path) -> None:
    (project / "bad.yaml").write_text(
        "name: bad\ntasks:\n  - id: a\n    type: shel\n    command: echo\n"
    )
    with pytest.raises(UsageError) as caught:
        cell(ip, "%workflow validate bad.yaml")
    assert str(caught.value).startswith("bad.yaml is not a valid workflow: 1 error(s)\n")
    assert "bad.yaml:4:5, task 'a', field 'type': unknown task type 'shel'" in str(caught.value)
    with pytest.raises(UsageError, match="nope.json: no such workflow file"):
        cell(ip, "%workflow validate nope.json")


def test_history_table_rows_and_dataframe(
    ip: InteractiveShell, project: Path, run_workflow: Any
) -> None:
    empty = cell(ip, "%workflow history")
    assert isinstance(empty, HistoryView) and len(empty) == 0
    assert "no executions recorded yet" in repr(empty)
    first = run_workflow(GREET)
    other = run_workflow(
        {"name": "other", "tasks": [{"id": "f", "type": "shell", "command": "exit 1"}]}
    )
    history = cell(ip, "%workflow history")
    assert [row["id"] for row in history.rows] == [other.id, first.id]  # newest first
    assert history.rows[0]["status"] == "failed" and history.rows[0]["failed_tasks"] == 1
    assert [r["workflow"] for r in cell(ip, "%workflow history --limit 1").rows] == ["other"]
    assert [r["id"] for r in cell(ip, "%workflow history --workflow greet").rows] == [first.id]
    assert [r["id"] for r in cell(ip, "%workflow history --status failed").rows] == [other.id]
    frame = history.to_dataframe()
    assert list(frame["workflow"]) == ["other", "greet"]
    assert {"id", "status", "started_at", "duration_ms"} <= set(frame.columns)
    page = history._repr_html_()
    assert other.id[:8] in page and "failed" in page and "succeeded" in page


def test_history_without_pandas_says_what_to_install(
    ip: InteractiveShell, run_workflow: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_workflow(GREET)
    history = cell(ip, "%workflow history")
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(ImportError, match="needs pandas"):
        history.to_dataframe()
    assert history.rows[0]["workflow"] == "greet"


def test_status_shows_children_under_parent_attempts_and_logs(
    ip: InteractiveShell, project: Path, run_workflow: Any
) -> None:
    flaky = "test -f tried || { touch tried; echo first try; exit 1; }; echo second try"
    execution = run_workflow(
        {
            "name": "nested",
            "tasks": [
                {"id": "flaky", "type": "shell", "command": flaky,
                 "retry": {"attempts": 2, "delay": 0}},
                {"id": "fan", "type": "parallel", "depends_on": ["flaky"], "tasks": [
                    {"id": "left", "type": "shell", "command": "echo from left"},
                    {"id": "right", "type": "shell", "command": "echo from right"},
                ]},
                {"id": "last", "type": "shell", "command": "echo end", "depends_on": ["fan"]},
            ],
        }
    )  # fmt: skip
    assert execution.status is State.SUCCEEDED
    view = cell(ip, f"%workflow status {execution.id[:8]}")
    assert isinstance(view, ExecutionView) and view.execution.id == execution.id
    rows = [
        line.split()[0]
        for line in repr(view).splitlines()
        if line.startswith(("fl", "fa", "  ", "la"))
    ]
    order = [r for r in rows if r in ("flaky", "fan", "left", "right", "last")]
    assert order.index("fan") < order.index("left") < order.index("last")
    assert order.index("fan") < order.index("right") < order.index("last")
    text = repr(view)
    assert "  left" in text and "  right" in text  # indented under their parent
    assert "2: failed, succeeded" in text
    assert "from left" in text and "second try" in text
    assert "second try" not in repr(cell(ip, f"%workflow status {execution.id} --logs 0"))
    # Ran here, locally: no word about where.
    heading = next(line for line in text.splitlines() if line.startswith("task "))
    assert heading.split() == ["task", "type", "status", "attempts", "duration", "exit", "detail"]
    assert "tasks run on" not in text


def test_status_of_a_cluster_run_says_where_and_links_the_dashboard(
    ip: InteractiveShell, project: Path
) -> None:
    worker = "tcp://10.0.0.7:40123"
    write_run(
        store(project),
        "dask-1",
        executor="dask",
        cluster="tcp://10.0.0.5:8786",
        dashboard="http://10.0.0.5:8787/status",
        tasks=[TaskPlan("a", placed=[("dask", worker, "node-7")])],
    )
    view = cell(ip, "%workflow status dask-1")
    text = repr(view)
    assert (
        "tasks run on dask at tcp://10.0.0.5:8786 (dashboard: http://10.0.0.5:8787/status)" in text
    )
    heading, row = (line.split() for line in text.splitlines() if line.startswith(("task ", "a ")))
    assert heading[4] == "where" and row[4] == worker
    html = view._repr_html_()
    assert "<a href='http://10.0.0.5:8787/status' target='_blank'" in html
    assert f"<td style='padding:2px 8px;text-align:left;vertical-align:top'>{worker}</td>" in html
    # Only an http(s) address becomes a link.
    view.execution.dashboard = "javascript:alert(1)"
    assert "<a " not in view._repr_html_()


def test_monitor_summarises_health_per_workflow(
    ip: InteractiveShell, project: Path, run_workflow: Any
) -> None:
    for _ in range(2):
        run_workflow(GREET)
    run_workflow({"name": "broken", "tasks": [{"id": "f", "type": "shell", "command": "exit 2"}]})
    health = cell(ip, "%workflow monitor")
    assert isinstance(health, HealthView)
    by_name = {row["workflow"]: row for row in health.rows}
    assert by_name["greet"]["runs"] == 2 and by_name["greet"]["success_rate"] == 1.0
    assert by_name["broken"]["failed"] == 1 and by_name["broken"]["last_status"] == "failed"
    text = repr(health)
    assert "100%" in text and "0%" in text
    assert [r["workflow"] for r in cell(ip, "%workflow monitor --workflow broken").rows] == [
        "broken"
    ]
    assert len(health.to_dataframe()) == 2


# -- %%workflow -----------------------------------------------------------------------------

CELL_WITH_UNKNOWN_FIELD = """%%workflow
name: in-a-cell
tasks:
  - colour: red
    id: a
    type: shell
    command: echo hi
"""


def test_cell_errors_carry_cell_line_numbers(ip: InteractiveShell) -> None:
    report = cell(ip, CELL_WITH_UNKNOWN_FIELD.replace("%%workflow", "%%workflow --no-raise"))
    assert isinstance(report, ReportView) and not report.ok
    [problem] = report.problems
    assert (problem.line, problem.task_id, problem.field) == (4, "a", "colour")
    assert "<cell>:4:5, task 'a', field 'colour': unknown field 'colour'" in repr(report)
    broken_json = cell(
        ip, '%%workflow --no-raise\n{"name": "j",\n "tasks": [\n  {"id": "a",, }]}\n'
    )
    assert [p.line for p in broken_json.problems] == [4]


def test_cell_validates_and_name_option_supplies_the_name(ip: InteractiveShell) -> None:
    body = "tasks:\n  - id: a\n    type: shell\n    command: echo hi\n"
    without = cell(ip, "%%workflow --no-raise\n" + body)
    assert not without.ok and "missing required field 'name'" in repr(without)
    named = cell(ip, "%%workflow --name from-option\n" + body)
    assert named.ok and named.workflow.name == "from-option"
    renamed = cell(ip, "%%workflow --name other\nname: inside\n" + body)
    assert renamed.workflow.name == "other"


def test_cell_run_runs_and_records(ip: InteractiveShell, project: Path) -> None:
    view = cell(
        ip,
        "%%workflow --run --name cell-run --env WHO=notebook\n"
        "tasks:\n  - id: a\n    type: shell\n    command: echo hello ${env.WHO}\n",
    )
    assert isinstance(view, ExecutionView) and view.status is State.SUCCEEDED
    assert view.tasks["a"].result == "hello notebook"
    [row] = store(project).history()
    assert (row.id, row.workflow, row.status) == (view.execution.id, "cell-run", "succeeded")


def test_cell_run_with_errors_runs_nothing(ip: InteractiveShell, project: Path) -> None:
    with pytest.raises(UsageError, match="was not run: 1 error") as caught:
        cell(ip, CELL_WITH_UNKNOWN_FIELD.replace("%%workflow", "%%workflow --run"))
    assert "<cell>:4:5" in str(caught.value)
    assert not (default_store_path(project) / "journals").exists()
    with pytest.raises(UsageError, match="need --run"):
        cell(ip, "%%workflow --env A=1\nname: x\ntasks: []\n")
    with pytest.raises(UsageError, match="unrecognized arguments: --fast\nusage: %%workflow"):
        cell(ip, "%%workflow --fast\nname: x\n")


# -- failing loudly, and the workflows a session knows by name -------------------------------

FAILING = {
    "name": "fails",
    "tasks": [
        {"id": "ok", "type": "shell", "command": "echo fine"},
        {"id": "bad", "type": "shell", "command": "echo 'disk on fire' >&2; exit 2"},
    ],
}
FAILING_CELL = "tasks:\n  - id: bad\n    type: shell\n    command: exit 5\n"


def test_a_failed_run_is_shown_then_raised_with_its_failed_tasks(
    ip: InteractiveShell, project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_workflow(project, FAILING)
    capsys.readouterr()
    result = ip.run_cell("%workflow run wf.json")
    failed = result.error_in_exec
    assert isinstance(failed, WorkflowFailed)
    execution = failed.execution
    assert str(failed) == (
        f"workflow 'fails' failed (execution {execution.id}):\n"
        "  bad (failed): exited with code 2: disk on fire"
    )
    shown = capsys.readouterr()
    output = shown.out + shown.err
    assert output.index("workflow 'fails'") < output.index("WorkflowFailed: workflow 'fails'")
    assert "Traceback" not in output and "magics.py" not in output  # the message, no frames
    assert store(project).get_execution(execution.id).status is State.FAILED


def test_no_raise_returns_the_failed_run_to_explore(ip: InteractiveShell, project: Path) -> None:
    write_workflow(project, FAILING)
    view = cell(ip, "%workflow run wf.json --no-raise")
    assert isinstance(view, ExecutionView) and view.status is State.FAILED
    assert view.tasks["ok"].status is State.SUCCEEDED


def test_a_failed_cell_run_raises_unless_no_raise(ip: InteractiveShell, project: Path) -> None:
    with pytest.raises(WorkflowFailed, match=r"workflow 'cell-fails' failed .*\n  bad \(failed\)"):
        cell(ip, "%%workflow --run --name cell-fails\n" + FAILING_CELL)
    view = cell(ip, "%%workflow --run --no-raise --name cell-fails\n" + FAILING_CELL)
    assert view.status is State.FAILED and view.tasks["bad"].error == "exited with code 5"


def test_an_invalid_cell_raises_unless_no_raise(ip: InteractiveShell) -> None:
    with pytest.raises(UsageError) as caught:
        cell(ip, CELL_WITH_UNKNOWN_FIELD)
    message = str(caught.value)
    assert message.startswith("the workflow in this cell is not valid: 1 error(s)\n")
    assert "<cell>:4:5, task 'a', field 'colour': unknown field 'colour'" in message


def test_a_named_cell_registers_its_workflow_for_run(ip: InteractiveShell, project: Path) -> None:
    body = "tasks:\n  - id: a\n    type: shell\n    command: echo registered ${env.WHO}\n"
    report = cell(ip, "%%workflow --name session-wf\n" + body)
    assert report.ok
    view = cell(ip, "%workflow run session-wf --env WHO=here")
    assert view.status is State.SUCCEEDED and view.tasks["a"].result == "registered here"
    [row] = store(project).history()
    assert row.workflow == "session-wf"
    assert store(project).get_execution(row.id).file is None  # from the cell, not a file
    # a later cell of that name replaces it; an invalid one does not
    cell(ip, "%%workflow --name session-wf\n" + body.replace("registered", "replaced"))
    with pytest.raises(UsageError):
        cell(ip, "%%workflow --name session-wf\ntasks: [{id: a}]\n")
    assert cell(ip, "%workflow run session-wf").tasks["a"].result == "replaced"


def test_running_a_name_nobody_registered_lists_the_registered_ones(
    ip: InteractiveShell, project: Path
) -> None:
    cell(ip, "%%workflow --name listed-one\ntasks: [{id: a, type: shell, command: 'true'}]\n")
    with pytest.raises(UsageError) as caught:
        cell(ip, "%workflow run etl")
    message = str(caught.value)
    assert message.startswith("etl: no such workflow file; no workflow named 'etl' (registered")
    assert "listed-one" in message and "%%workflow --name NAME" in message


# -- background runs ------------------------------------------------------------------------


def test_background_without_a_loop_runs_in_a_thread_and_can_be_awaited(
    ip: InteractiveShell, project: Path
) -> None:
    write_workflow(project, one_task("sleep 0.8; echo woke"))
    started = time.monotonic()
    cell(ip, "handle = %workflow run wf.json --background")
    handle = ip.user_ns["handle"]
    assert isinstance(handle, BackgroundRun)
    assert time.monotonic() - started < 0.7 and not handle.done()  # returned before the end
    assert handle.execution_id == handle.execution.id
    cell(ip, "finished = await handle")  # top-level await in the shell
    finished = ip.user_ns["finished"]
    assert finished.status is State.SUCCEEDED and finished.tasks["nap"].result == "woke"
    assert handle.done() and handle.result(timeout=1) is finished
    assert "succeeded" in handle._repr_html_() and "nap" in repr(handle)
    assert store(project).get_execution(handle.execution_id).status is State.SUCCEEDED
    assert handle.cancel() is False  # already ended


def test_background_on_a_running_loop_shares_it(ip: InteractiveShell, project: Path) -> None:
    write_workflow(project, one_task("sleep 0.3"))

    async def session() -> tuple[Any, State]:
        handle = ip.run_line_magic("workflow", "run wf.json --background")
        time.sleep(0.6)  # blocks the loop: a run on this loop cannot have moved
        state_while_blocked = handle.execution.status
        with pytest.raises(RuntimeError, match="await handle"):
            handle.result()
        return await handle, state_while_blocked

    execution, blocked = asyncio.run(session())
    assert blocked is State.PENDING
    assert execution.status is State.SUCCEEDED
    assert store(project).get_execution(execution.id).status is State.SUCCEEDED


def test_background_run_cancelled_is_recorded_cancelled(
    ip: InteractiveShell, project: Path
) -> None:
    write_workflow(project, sleepy("30.017"))
    handle = ip.run_line_magic("workflow", "run wf.json --background")
    wait_until_running("30.017")
    assert handle.cancel() is True
    execution = handle.result(timeout=15)
    assert execution.status is State.CANCELLED
    assert store(project).get_execution(handle.execution_id).status is State.CANCELLED
    wait_for(lambda: not processes("30.017"), timeout=10)  # the task's process was stopped


def test_background_cancelled_at_once_on_the_loop_is_still_recorded(
    ip: InteractiveShell, project: Path
) -> None:
    # Short: this cancel lands while the task's process is being spawned (see
    # wait_until_running), which currently costs the process's whole run.
    write_workflow(project, sleepy("2.018"))

    async def session() -> Any:
        handle = ip.run_line_magic("workflow", "run wf.json --background")
        handle.cancel()  # before the run has taken a single step
        return await handle

    execution = asyncio.run(session())
    assert execution.status is State.CANCELLED
    assert store(project).get_execution(execution.id).status is State.CANCELLED


# -- interrupting a foreground run ----------------------------------------------------------


def test_interrupt_cancels_a_foreground_run(ip: InteractiveShell, project: Path) -> None:
    write_workflow(project, sleepy("30.019"))

    def interrupt_once_running() -> None:
        wait_until_running("30.019")
        os.kill(os.getpid(), signal.SIGINT)  # what Ctrl-C (or a kernel interrupt) sends

    threading.Thread(target=interrupt_once_running, daemon=True).start()
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt, match="cancelled and recorded"):
        ip.run_line_magic("workflow", "run wf.json")
    assert time.monotonic() - started < 10
    [row] = store(project).history()
    assert row.status == "cancelled"
    assert not processes("30.019")


def test_interrupt_cancels_a_foreground_run_on_a_running_loop(
    ip: InteractiveShell, project: Path
) -> None:
    """As in a kernel: the cell runs on the loop, the run in a worker thread, the interrupt
    arrives as a KeyboardInterrupt in the cell's thread."""
    write_workflow(project, sleepy("30.020"))

    def interrupt_once_running() -> None:
        wait_until_running("30.020")
        os.kill(os.getpid(), signal.SIGINT)

    async def cell_on_the_loop() -> None:
        ip.run_line_magic("workflow", "run wf.json")

    threading.Thread(target=interrupt_once_running, daemon=True).start()
    loop = asyncio.new_event_loop()  # not asyncio.run: it would take SIGINT for itself
    try:
        with pytest.raises(KeyboardInterrupt, match="cancelled and recorded"):
            loop.run_until_complete(cell_on_the_loop())
    finally:
        loop.close()
    [row] = store(project).history()
    assert row.status == "cancelled"
    assert not processes("30.020")


# -- a real kernel ---------------------------------------------------------------------------


@pytest.fixture
def kernel(project: Path) -> Iterator[Any]:
    from jupyter_client.manager import start_new_kernel

    manager, client = start_new_kernel(kernel_name="python3", cwd=str(project))
    try:
        yield manager, client
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)


def execute(
    client: Any, code: str, timeout: float = 60
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Run ``code`` in the kernel; return the reply and the outputs (iopub contents)."""
    outputs: list[dict[str, Any]] = []

    def keep(msg: dict[str, Any]) -> None:
        if msg["msg_type"] in ("stream", "display_data", "execute_result", "error"):
            outputs.append({"type": msg["msg_type"], **msg["content"]})

    reply = client.execute_interactive(code, output_hook=keep, timeout=timeout)
    return reply["content"], outputs


def shown(outputs: list[dict[str, Any]], mime: str = "text/plain") -> str:
    return "\n".join(o.get("text", "") + str(o.get("data", {}).get(mime, "")) for o in outputs)


@pytest.mark.slow
def test_in_a_kernel_background_runs_while_the_user_works(kernel: Any, project: Path) -> None:
    _, client = kernel
    write_workflow(project, one_task("sleep 1.5; echo woke"))
    reply, _ = execute(client, "%load_ext jupyter_workflows")
    assert reply["status"] == "ok"
    reply, outputs = execute(client, "h = %workflow run wf.json --background\nh")
    assert reply["status"] == "ok"
    assert any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in outputs)
    reply, outputs = execute(client, "print(h.done(), h.execution.status)")
    assert "False running" in shown(outputs)  # the next cell ran while the workflow did
    reply, outputs = execute(client, "e = await h\nprint(e.status, e.tasks['nap'].result)")
    assert reply["status"] == "ok" and "succeeded woke" in shown(outputs)
    assert store(project).history()[0].status == "succeeded"


@pytest.mark.slow
def test_in_a_kernel_an_interrupt_cancels_the_foreground_run(kernel: Any, project: Path) -> None:
    manager, client = kernel
    write_workflow(project, sleepy("30.021"))
    execute(client, "%load_ext jupyter_workflows")
    msg_id = client.execute("%workflow run wf.json")
    wait_until_running("30.021")
    manager.interrupt_kernel()
    started = time.monotonic()
    reply = client.get_shell_msg(timeout=30)
    while reply["parent_header"].get("msg_id") != msg_id:
        reply = client.get_shell_msg(timeout=30)
    assert time.monotonic() - started < 10
    assert reply["content"]["status"] == "error"
    assert reply["content"]["ename"] == "KeyboardInterrupt"
    [row] = store(project).history()
    assert row.status == "cancelled"
    wait_for(lambda: not processes("30.021"), timeout=10)
    reply, outputs = execute(client, "print(_ if False else 'still alive')")
    assert reply["status"] == "ok" and "still alive" in shown(outputs)


def _papermill(project: Path, *cells: str) -> subprocess.CompletedProcess[str]:
    """``papermill`` as a headless job runs it: a notebook of ``cells``, in ``project``."""
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(source) for source in cells]
    nbformat.write(nb, str(project / "job.ipynb"))
    papermill = Path(sys.executable).parent / "papermill"
    return subprocess.run(
        [str(papermill), "job.ipynb", "out.ipynb", "--cwd", str(project), "--no-progress-bar"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.slow
def test_papermill_exits_non_zero_when_the_notebooks_workflow_fails(project: Path) -> None:
    write_workflow(project, FAILING)
    done = _papermill(project, "%load_ext jupyter_workflows", "%workflow run wf.json", "1 + 1")
    assert done.returncode != 0
    assert "WorkflowFailed" in done.stderr and "bad (failed): exited with code 2" in done.stderr
    import nbformat

    out = nbformat.read(str(project / "out.ipynb"), as_version=4)
    run_cell = next(c for c in out.cells if c.source == "%workflow run wf.json")
    assert [o.ename for o in run_cell.outputs if o.output_type == "error"] == ["WorkflowFailed"]
    assert out.cells[-1].execution_count is None  # "Run All" stopped at the failed run

    explored = _papermill(
        project, "%load_ext jupyter_workflows", "%workflow run wf.json --no-raise", "1 + 1"
    )
    assert explored.returncode == 0, explored.stderr


# -- alerts ---------------------------------------------------------------------------------


def test_a_failed_run_in_a_cell_alerts_once(
    ip: InteractiveShell, project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from jupyter_workflows.monitor.alerting import recent_alerts

    failing = {"name": "cell-fails", "tasks": [{"id": "a", "type": "shell", "command": "exit 2"}]}
    write_workflow(project, failing)
    with pytest.raises(WorkflowFailed) as caught:  # the alert goes out before the raise
        cell(ip, "%workflow run wf.json")
    assert "ALERT [ERROR] workflow 'cell-fails' failed" in capsys.readouterr().err
    (record,) = recent_alerts(default_store_path(project))
    assert (record["execution_id"], record["ok"]) == (caught.value.execution.id, True)


# -- resume ---------------------------------------------------------------------------------


def test_resume_reuses_what_succeeded_and_shows_it(ip: InteractiveShell, project: Path) -> None:
    gated = {
        "name": "gated",
        "tasks": [
            {"id": "first", "type": "shell", "command": "echo x >> runs; echo one"},
            {"id": "second", "type": "shell", "depends_on": ["first"],
             "command": "test -f go && echo two-${tasks.first.result}"},
        ],
    }  # fmt: skip
    write_workflow(project, gated)
    failed = cell(ip, "%workflow run wf.json --no-raise")
    assert failed.status is State.FAILED
    (project / "go").touch()
    view = cell(ip, f"%workflow resume {failed.execution.id[:8]}")
    assert view.status is State.SUCCEEDED and view.execution.resumed_from == failed.execution.id
    assert view.tasks["first"].reused == "resumed" and view.tasks["second"].result == "two-one"
    assert (project / "runs").read_text().count("x") == 1
    assert f"resumed from execution {failed.execution.id}" in view.text()
    assert "resumed" in view._repr_html_()
    again = cell(ip, f"%workflow run wf.json --resume {failed.execution.id} --only second")
    assert again.tasks["first"].reused == "resumed"
    with pytest.raises(UsageError, match="--from: the workflow has no task 'nope'"):
        cell(ip, f"%workflow resume {failed.execution.id} --from nope")


def test_the_progress_eta_comes_from_the_workflows_history(
    ip: InteractiveShell, project: Path
) -> None:
    from jupyter_workflows.definition.model import Workflow
    from jupyter_workflows.engine import WorkflowOrchestrator
    from jupyter_workflows.jupyter.magics import _usual_duration

    model = Workflow.model_validate({**one_task("sleep 0.4"), "expected_duration": "7s"})
    orchestrator = WorkflowOrchestrator(project)
    assert _usual_duration(orchestrator, model) == 7.0  # no history yet: the declared one
    write_workflow(project, one_task("sleep 0.4"))
    cell(ip, "%workflow run wf.json")
    [row] = store(project).history()
    assert _usual_duration(orchestrator, model) == pytest.approx(row.duration_ms / 1000)


def test_run_parameters_are_typed_like_papermill(ip: InteractiveShell, project: Path) -> None:
    write_workflow(project, one_task("echo ${params.n} ${params.region} ${params.deep.k}"))
    view = cell(ip, '%workflow run wf.json -p n 5 -y "{region: eu, deep: {k: v}}"')
    assert view.tasks["nap"].result == "5 eu v"
    body = "name: c\ntasks:\n  - {id: t, type: shell, command: 'echo ${params.x}'}\n"
    view = cell(ip, "%%workflow --run -p x 0.5\n" + body)
    assert view.tasks["t"].result == 0.5  # echoed, read back as JSON
    with pytest.raises(UsageError, match="need --run"):
        cell(ip, "%%workflow -p x 1\n" + body)
    with pytest.raises(UsageError, match="parameter name '1x' is not valid"):
        cell(ip, "%workflow run wf.json -p 1x 1")
