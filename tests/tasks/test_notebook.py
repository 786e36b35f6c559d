"""notebook tasks: real kernels, real notebook files, through the engine."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest

from jupyter_workflows.engine import WorkflowOrchestrator
from jupyter_workflows.execution.events import OutputLine, TaskProgress
from jupyter_workflows.execution.states import State
from jupyter_workflows.tasks import registry
from jupyter_workflows.tasks.notebook.params import inject_parameters, python_source
from jupyter_workflows.tasks.notebook.pool import KernelPool
from jupyter_workflows.tasks.notebook.runner import NotebookRunner
from tests.conftest import make_workflow

RECORD = "from jupyter_workflows import record\n"


def notebook(path: Path, *cells: str, parameters: str | None = None) -> Path:
    """Write a Python notebook: an optional cell tagged "parameters", then code cells
    (a cell starting with "# md" is markdown)."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python", "language": "python"}
    if parameters is not None:
        cell = nbformat.v4.new_code_cell(parameters)
        cell.metadata["tags"] = ["parameters"]
        nb.cells.append(cell)
    for source in cells:
        if source.startswith("# md"):
            nb.cells.append(nbformat.v4.new_markdown_cell(source[4:].strip()))
        else:
            nb.cells.append(nbformat.v4.new_code_cell(source))
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(path))
    return path


@pytest.fixture(scope="module")
def pool() -> Iterator[KernelPool]:
    """A pool of our own (one spare), so these tests neither use nor leave the default one."""
    pool = KernelPool(spares=1)
    registry.register("notebook", NotebookRunner(pool))
    yield pool
    registry.register("notebook", NotebookRunner())
    pool.shutdown()


@pytest.fixture
def kernels(pool: KernelPool) -> Iterator[KernelPool]:
    yield pool
    pool.close()  # this test's spares (its project directory is gone after it)


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().rsplit(")", 1)[1].split()[0] == "Z"


def test_parameters_and_recorded_values_flow_between_tasks(project, run_workflow, kernels):
    notebook(
        project / "nb" / "clean.ipynb",
        RECORD + "record('rows', int(rows) * 2)\nrecord('info', {'label': label, 'n': [1, 2]})",
        "print(f'{label}: {rows} rows')",
        parameters="rows = 0\nlabel = 'default'",
    )
    notebook(
        project / "nb" / "summary.ipynb",
        RECORD + "record('doubled', doubled)\nrecord('kind', type(doubled).__name__)",
        parameters="doubled = None",
    )
    execution = run_workflow(
        make_workflow(
            {"id": "prep", "type": "shell", "command": 'echo "rows=7" >> "$WORKFLOW_OUTPUT"'},
            {
                "id": "nb1",
                "type": "notebook",
                "notebook": "nb/clean.ipynb",
                "parameters": {"rows": "${tasks.prep.outputs.rows}", "label": 'it\'s "x"'},
                "depends_on": ["prep"],
            },
            {
                "id": "nb2",
                "type": "notebook",
                "notebook": "nb/summary.ipynb",
                "parameters": {"doubled": "${tasks.nb1.outputs.rows}"},
                "output": "reports/${env.REPORT}-summary.ipynb",
                "depends_on": ["nb1"],
            },
        ),
        env={"REPORT": "weekly"},
    )
    nb1, nb2 = execution.tasks["nb1"], execution.tasks["nb2"]
    assert nb1.status is State.SUCCEEDED, nb1.error
    assert nb1.outputs == {"rows": 14, "info": {"label": 'it\'s "x"', "n": [1, 2]}}
    assert nb1.log_tail == ['it\'s "x": 7 rows']
    assert nb2.status is State.SUCCEEDED, nb2.error
    assert nb2.outputs == {"doubled": 14, "kind": "int"}  # a lone reference keeps its type
    assert nb2.result == {
        "output": str(project / "reports/weekly-summary.ipynb"),
        "recorded": {"doubled": 14, "kind": "int"},
    }
    # The default output: this execution's artifacts folder, <task id>/<notebook name>.
    written = Path(nb1.result["output"])
    assert written.parts[-3:] == (execution.id, "nb1", "clean.ipynb") and written.is_file()
    executed = nbformat.read(str(written), as_version=4)
    injected = executed.cells[1]
    assert injected.metadata.tags == ["injected-parameters"]
    assert injected.source == '# Parameters\nrows = "7"\nlabel = "it\'s \\"x\\""\n'
    assert executed.metadata.papermill["parameters"] == {"rows": "7", "label": 'it\'s "x"'}
    assert executed.cells[3].outputs[0].text == 'it\'s "x": 7 rows\n'
    assert [c.execution_count for c in executed.cells] == [1, 2, 3, 4]
    assert (project / "reports/weekly-summary.ipynb").is_file()


def test_cell_progress_and_output_lines_arrive_in_order(project, kernels):
    notebook(
        project / "steps.ipynb",
        "# md A heading that does not run",
        "print('one')",
        "",  # empty cells do not run
        "import sys\nprint('two', file=sys.stderr)\nsys.stderr.flush()\nprint('three')",
        parameters="x = 1",
    )
    events: list[Any] = []
    orchestrator = WorkflowOrchestrator(project, sinks=[events.append])
    execution = orchestrator.execute(
        make_workflow({"id": "nb", "type": "notebook", "notebook": "steps.ipynb"})
    )
    assert execution.tasks["nb"].status is State.SUCCEEDED
    seen = [
        (e.step, e.total, e.label, e.status) if isinstance(e, TaskProgress) else (e.stream, e.line)
        for e in events
        if isinstance(e, (TaskProgress, OutputLine))
    ]
    assert seen == [
        (1, 3, "cell 1/3", "running"),
        (1, 3, "cell 1/3", "succeeded"),
        (2, 3, "cell 2/3", "running"),
        ("stdout", "one"),
        (2, 3, "cell 2/3", "succeeded"),
        (3, 3, "cell 3/3", "running"),
        ("stderr", "two"),
        ("stdout", "three"),
        (3, 3, "cell 3/3", "succeeded"),
    ]


def test_a_failing_cell_fails_the_task_and_the_notebook_is_still_written(
    project, run_workflow, kernels
):
    notebook(
        project / "fails.ipynb",
        RECORD + "record('before', 1)\nprint('working')",
        "x = 1 / 0",
        "print('never')",
        parameters="n = 1",
    )
    execution = run_workflow(
        make_workflow(
            {"id": "nb", "type": "notebook", "notebook": "fails.ipynb", "parameters": {"n": 2}},
            {"id": "after", "type": "shell", "command": "true", "depends_on": ["nb"]},
        )
    )
    task = execution.tasks["nb"]
    assert task.status is State.FAILED
    assert task.error == "cell 4/5 raised ZeroDivisionError: division by zero"
    assert task.outputs == {"before": 1}  # what was recorded before the failure is kept
    assert "ZeroDivisionError: division by zero" in task.log_tail
    assert execution.tasks["after"].status is State.SKIPPED
    executed = nbformat.read(task.result["output"], as_version=4)
    banner, *cells = executed.cells
    assert "An Exception was encountered" in banner.source
    failed = next(c for c in cells if c.get("outputs") and c.outputs[-1].output_type == "error")
    assert failed.source == "x = 1 / 0" and failed.outputs[-1].ename == "ZeroDivisionError"
    assert failed.metadata.papermill["status"] == "failed"
    assert cells[-1].execution_count is None and cells[-1].outputs == []
    assert executed.metadata.papermill["exception"] is True


def test_a_timeout_stops_the_kernel_and_keeps_the_partial_notebook(project, run_workflow, kernels):
    notebook(
        project / "slow.ipynb",
        "import os\nprint(os.getpid())",
        "import time\ntime.sleep(30)",
    )
    started = time.monotonic()
    execution = run_workflow(
        make_workflow({"id": "nb", "type": "notebook", "notebook": "slow.ipynb", "timeout": "2s"})
    )
    task = execution.tasks["nb"]
    assert task.status is State.TIMED_OUT
    assert time.monotonic() - started < 6
    pid = int(task.log_tail[0])
    assert _gone(pid)
    written = next((project / "workflows").rglob("slow.ipynb"))
    executed = nbformat.read(str(written), as_version=4)
    first, second = (c for c in executed.cells if c.cell_type == "code")
    assert first.outputs[0].text == f"{pid}\n"
    assert second.outputs[-1].ename == "Cancelled"


def test_a_kernel_that_dies_fails_the_task_with_the_cell(project, run_workflow, kernels):
    notebook(project / "dies.ipynb", "print('before')", "import os\nos._exit(3)", "print('after')")
    execution = run_workflow(
        make_workflow({"id": "nb", "type": "notebook", "notebook": "dies.ipynb"})
    )
    task = execution.tasks["nb"]
    assert task.status is State.FAILED
    assert task.error.startswith("kernel 'python3' exited while running cell 2/3")
    executed = nbformat.read(task.result["output"], as_version=4)
    died = next(c for c in executed.cells if c.get("source") == "import os\nos._exit(3)")
    assert died.outputs[-1].ename == "KernelDied"


def test_bad_input_fails_with_a_clear_message(project, run_workflow, kernels):
    (project / "broken.ipynb").write_text('{"cells": [')
    notebook(project / "ok.ipynb", "print('hi')")
    execution = run_workflow(
        make_workflow(
            {"id": "missing", "type": "notebook", "notebook": "nowhere/missing.ipynb"},
            {"id": "json", "type": "notebook", "notebook": "broken.ipynb"},
            {"id": "kernel", "type": "notebook", "notebook": "ok.ipynb", "kernel": "nope"},
            {
                "id": "param",
                "type": "notebook",
                "notebook": "ok.ipynb",
                "parameters": {"not a name": 1},
            },
        )
    )
    errors = {task_id: record.error for task_id, record in execution.tasks.items()}
    assert all(r.status is State.FAILED for r in execution.tasks.values())
    assert errors["missing"] == f"notebook {project / 'nowhere/missing.ipynb'} not found"
    assert errors["json"].startswith(f"notebook {project / 'broken.ipynb'} is not valid JSON: ")
    assert errors["kernel"].startswith("unknown kernel 'nope' (available kernels: ")
    assert "python3" in errors["kernel"]
    assert errors["param"] == "parameter name 'not a name' is not a valid Python identifier"


def test_each_notebook_gets_its_own_kernel_with_its_own_environment(project, run_workflow, kernels):
    source = RECORD + (
        "import os\nrecord('leaked', 'leftover' in globals())\nleftover = 1\n"
        "record('pid', os.getpid())\nrecord('task', os.environ['WORKFLOW_TASK_ID'])\n"
        "record('color', os.environ.get('COLOR'))\nrecord('cwd', os.getcwd())"
    )
    notebook(project / "who.ipynb", source)
    (project / "sub").mkdir()
    tasks = [
        {"id": "a", "type": "notebook", "notebook": "who.ipynb", "environment": {"COLOR": "red"}},
        {"id": "b", "type": "notebook", "notebook": "who.ipynb", "depends_on": ["a"]},
        {
            "id": "c",
            "type": "notebook",
            "notebook": "who.ipynb",
            "depends_on": ["b"],
            "environment": {"COLOR": "${tasks.a.outputs.color}-ish"},
            "cwd": "sub",
        },
    ]
    execution = run_workflow(make_workflow(*tasks))
    a, b, c = (execution.tasks[t].outputs for t in "abc")
    assert len({a["pid"], b["pid"], c["pid"]}) == 3
    assert (a["task"], b["task"], c["task"]) == ("a", "b", "c")
    # b's and c's kernels were started while the task before ran, with that task's environment.
    assert (a["color"], b["color"], c["color"]) == ("red", None, "red-ish")
    assert (a["cwd"], b["cwd"], c["cwd"]) == (str(project), str(project), str(project / "sub"))
    assert not (a["leaked"] or b["leaked"] or c["leaked"])


def test_a_kernel_from_a_kernelspec_is_spawned_and_stopped(
    project, run_workflow, kernels, monkeypatch, tmp_path
):
    import sys

    spec_dir = tmp_path / "share" / "kernels" / "jw-spawned"
    spec_dir.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}", "--Kernel.x=1"]
    spec = {"argv": argv, "display_name": "spawned", "language": "python",
            "env": {"FROM_SPEC": "yes"}}  # fmt: skip
    (spec_dir / "kernel.json").write_text(json.dumps(spec))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "share"))
    notebook(
        project / "spawned.ipynb",
        RECORD + "import os, sys\nprint(os.getpid())\nrecord('argv', sys.argv[-1])\n"
        "record('env', os.environ.get('FROM_SPEC'))",
    )
    notebook(
        project / "hangs.ipynb", "import os\nprint(os.getpid())", "import time\ntime.sleep(30)"
    )
    execution = run_workflow(
        make_workflow(
            {"id": "ok", "type": "notebook", "notebook": "spawned.ipynb", "kernel": "jw-spawned"},
            {
                "id": "slow",
                "type": "notebook",
                "notebook": "hangs.ipynb",
                "kernel": "jw-spawned",
                "timeout": "1s",
                "depends_on": ["ok"],
            },  # fmt: skip
        )
    )
    ok, slow = execution.tasks["ok"], execution.tasks["slow"]
    assert ok.status is State.SUCCEEDED, ok.error
    assert ok.outputs == {"argv": "--Kernel.x=1", "env": "yes"}
    assert slow.status is State.TIMED_OUT
    assert _gone(int(ok.log_tail[0])) and _gone(int(slow.log_tail[0]))


def test_reuse_kernel_keeps_the_process_and_resets_the_namespace(project, run_workflow, kernels):
    first = RECORD + (
        "import os\nsecret = 42\nos.chdir('/')\nrecord('pid', os.getpid())\n"
        "record('a', os.environ.get('A'))"
    )
    second = RECORD + (
        "import os\nrecord('pid', os.getpid())\nrecord('secret', 'secret' in globals())\n"
        "record('cwd', os.getcwd())\nrecord('a', os.environ.get('A'))"
    )
    notebook(project / "first.ipynb", first)
    notebook(project / "second.ipynb", second, "print(get_ipython().execution_count)")
    execution = run_workflow(
        make_workflow(
            {
                "id": "one",
                "type": "notebook",
                "notebook": "first.ipynb",
                "environment": {"A": "1"},
                "reuse_kernel": True,
            },
            {
                "id": "two",
                "type": "notebook",
                "notebook": "second.ipynb",
                "depends_on": ["one"],
                "reuse_kernel": True,
            },
            {"id": "three", "type": "notebook", "notebook": "second.ipynb", "depends_on": ["two"]},
        )
    )
    one, two = execution.tasks["one"], execution.tasks["two"]
    assert one.status is two.status is State.SUCCEEDED, (one.error, two.error)
    assert one.outputs["pid"] == two.outputs["pid"] != execution.tasks["three"].outputs["pid"]
    assert one.outputs["a"] == "1" and two.outputs["a"] is None
    assert two.outputs["secret"] is False
    assert two.outputs["cwd"] == str(project)
    # The execution count restarted: the same notebook prints the same count in the reused
    # kernel as in a fresh one (task three); the number itself depends on IPython's version.
    assert two.log_tail == execution.tasks["three"].log_tail
    assert two.log_tail in (["2"], ["3"])
    executed = nbformat.read(two.result["output"], as_version=4)
    assert [cell.execution_count for cell in executed.cells] == [1, 2]


def test_record_rejects_what_is_not_json(project, run_workflow, kernels):
    notebook(project / "bad.ipynb", RECORD + "record('ok', 1)\nrecord('s', {1, 2})")
    execution = run_workflow(
        make_workflow({"id": "nb", "type": "notebook", "notebook": "bad.ipynb"})
    )
    task = execution.tasks["nb"]
    assert task.status is State.FAILED
    assert task.error.startswith(
        "cell 1/1 raised TypeError: record('s', ...): a set value is not JSON-serialisable"
    )
    assert task.outputs == {"ok": 1}


def test_secrets_reach_the_kernel_but_not_the_log_outputs_or_saved_notebook(project, pool):
    import asyncio

    from jupyter_workflows.definition.templates import Scope
    from jupyter_workflows.tasks.base import TaskContext
    from jupyter_workflows.tasks.notebook import NotebookTask

    secret = 'p@ss "wörd"'
    notebook(
        project / "secret.ipynb",
        RECORD + "print('token is', token)\nrecord('same', token == " + repr(secret) + ")\n"
        "record('echo', {'t': token})",
        parameters="token = ''",
    )
    task = NotebookTask.model_validate(
        {
            "id": "nb",
            "type": "notebook",
            "notebook": "secret.ipynb",
            "parameters": {"token": "${secret.TOKEN}"},
        }
    )
    lines: list[tuple[str, str]] = []
    ctx = TaskContext(
        execution_id="x",
        task_id="nb",
        attempt=1,
        project_root=project,
        env=dict(os.environ),
        scope=Scope(env={}, secrets={"TOKEN": secret}),
        emit_line=lambda stream, line: lines.append((stream, line)),
        output_file=project / "out",
        artifacts_dir=project / "artifacts",
    )
    try:
        result = asyncio.run(NotebookRunner(pool).run(task, ctx))
    finally:
        pool.close()
    assert result.status is State.SUCCEEDED, result.error
    assert result.outputs == {"same": True, "echo": {"t": "***"}}
    assert lines == [("stdout", "token is ***")]
    saved = Path(result.result["output"]).read_text(encoding="utf-8")
    assert "p@ss" not in saved and "w\\u00f6rd" not in saved and "***" in saved


def test_record_outside_a_kernel_keeps_the_value():
    from jupyter_workflows import recording

    recording.record("plain", (1, 2.5, "x"))
    assert recording.recorded["plain"] == [1, 2.5, "x"]
    with pytest.raises(ValueError, match="letters, digits"):
        recording.record("no spaces", 1)
    with pytest.raises(TypeError, match="not JSON-serialisable"):
        recording.record("nan", float("nan"))


def test_python_parameters_are_written_exactly_as_papermill_writes_them():
    from papermill.translators import PythonTranslator, Translator

    values = {
        "s": 'a "quoted" \\ back\nslash é',
        "i": -3,
        "f": 0.1,
        "inf": float("-inf"),
        "b": True,
        "none": None,
        "lst": [1, "two", [3.5, False]],
        "d": {"k": {"nested": None}, "n": 1},
    }
    # papermill formats with black when it is installed; the unformatted text is the contract.
    unformatted = Translator.codify.__func__(PythonTranslator, values, "Parameters")
    assert python_source(values) == unformatted
    namespace: dict[str, Any] = {}
    exec(python_source(values), namespace)
    assert json.dumps({k: namespace[k] for k in values if k != "inf"}) == json.dumps(
        {k: v for k, v in values.items() if k != "inf"}
    )


def test_injected_cell_goes_after_the_parameters_cell_or_replaces_an_earlier_one():
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("title"), nbformat.v4.new_code_cell("a = 1")]
    nb.cells[1].metadata["tags"] = ["parameters"]
    nb.cells.append(nbformat.v4.new_code_cell("print(a)"))
    inject_parameters(nb, {"a": 2}, "python", "python3")
    assert [c.source for c in nb.cells] == ["title", "a = 1", "# Parameters\na = 2\n", "print(a)"]
    inject_parameters(nb, {"a": 3}, "python", "python3")
    assert [c.source for c in nb.cells][2] == "# Parameters\na = 3\n" and len(nb.cells) == 4
    plain = nbformat.v4.new_notebook()
    plain.cells = [nbformat.v4.new_code_cell("print(a)")]
    inject_parameters(plain, {"a": 1}, "python", "python3")
    assert plain.cells[0].metadata.tags == ["injected-parameters"]


def test_a_cached_notebook_task_keeps_its_executed_notebook(project, run_workflow, kernels):
    """A cache hit reuses the recorded values and gives the new execution its own copy of the
    executed notebook, which the result names."""
    notebook(project / "nb" / "count.ipynb", RECORD + "import os\nrecord('pid', os.getpid())")
    workflow = make_workflow(
        {"id": "nb", "type": "notebook", "notebook": "nb/count.ipynb", "cache": True}
    )
    first = run_workflow(workflow)
    second = run_workflow(workflow)
    ran, hit = first.tasks["nb"], second.tasks["nb"]
    assert ran.status is State.SUCCEEDED and ran.reused is None, ran.error
    assert (hit.status, hit.reused, hit.reused_from) == (State.SUCCEEDED, "cached", first.id)
    assert hit.outputs == ran.outputs  # the same pid: the notebook did not run again
    kept = Path(hit.result["output"])
    assert kept.parts[-3:] == (second.id, "nb", "count.ipynb") and kept.is_file()
    assert kept.read_bytes() == Path(ran.result["output"]).read_bytes()
    notebook(project / "nb" / "count.ipynb", RECORD + "record('pid', -1)")  # edited: runs
    assert run_workflow(workflow).tasks["nb"].outputs == {"pid": -1}
