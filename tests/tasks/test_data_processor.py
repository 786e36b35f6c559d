"""data_processor tasks: real node and python processors over real files in a tmp project."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

import pytest

from jupyter_workflows.execution.states import State
from jupyter_workflows.tasks.data_processor.runner import INPUT_DATA_LIMIT
from tests.conftest import make_workflow

needs_node = pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")

# Each describes what it received, so one assertion checks reading, formats and variables.
DESCRIBE = {
    "javascript": """
const data = JSON.parse(process.env.INPUT_DATA);
const kind = Array.isArray(data) ? 'list' : typeof data;
console.error('seen ' + process.env.INPUT_NAME);
console.log(JSON.stringify({
  name: process.env.INPUT_NAME, path: process.env.INPUT_PATH, kind, data,
}));
""",
    "python": """
import json, os, sys
data = json.loads(os.environ["INPUT_DATA"])
kind = {list: "list", dict: "object", str: "string"}[type(data)]
print("seen", os.environ["INPUT_NAME"], file=sys.stderr)
print(json.dumps({"name": os.environ["INPUT_NAME"], "path": os.environ["INPUT_PATH"],
                  "kind": kind, "data": data}))
""",
}
SUFFIX = {"javascript": "js", "python": "py"}
KINDS = ["javascript", pytest.param("python")]


def write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def processor_task(
    kind: str, script: str, pattern: str = "data/*", output: str | None = None, **fields: Any
) -> dict[str, Any]:
    task: dict[str, Any] = {
        "id": "p",
        "type": "data_processor",
        "input": {"type": "file", "path": pattern},
        "processor": {"type": kind, "script": script},
        **fields,
    }
    if output is not None:
        task["output"] = {"type": "file", "path": output}
    return task


def describe_script(root: Path, kind: str) -> str:
    name = f"scripts/describe.{SUFFIX[kind]}"
    write(root, {name: DESCRIBE[kind]})
    return name


@pytest.mark.parametrize("kind", [pytest.param("javascript", marks=needs_node), "python"])
def test_json_csv_and_text_inputs_become_named_outputs(kind, project, run_workflow):
    write(
        project,
        {
            "data/orders.json": '{"id": 1, "items": [2, 3]}',
            "data/people.csv": '\ufeffid,name\n1,ann\n2,"bob, jr"\n',
            "data/notes.txt": "caf\u00e9\nline two\n",
        },
    )
    script = describe_script(project, kind)
    execution = run_workflow(
        make_workflow(processor_task(kind, script, output="processed/${input}.json"))
    )
    task = execution.tasks["p"]
    assert task.status is State.SUCCEEDED, task.error
    outputs = {
        name: json.loads((project / "processed" / f"{name}.json").read_text())
        for name in ("orders", "people", "notes")
    }
    assert outputs["orders"]["kind"] == "object"
    assert outputs["orders"]["data"] == {"id": 1, "items": [2, 3]}
    assert outputs["people"]["kind"] == "list"
    assert outputs["people"]["data"] == [{"id": "1", "name": "ann"}, {"id": "2", "name": "bob, jr"}]
    assert outputs["notes"]["kind"] == "string"
    assert outputs["notes"]["data"] == "caf\u00e9\nline two\n"
    assert outputs["orders"]["path"] == str(project / "data" / "orders.json")
    # Pretty-printed, non-ASCII kept readable.
    notes_text = (project / "processed" / "notes.json").read_text(encoding="utf-8")
    assert '\n  "name": "notes",' in notes_text and "caf\u00e9" in notes_text
    assert task.result == {
        "processed": 3,
        "succeeded": 3,
        "failed": 0,
        "items": [
            {"input": f"data/{n}", "output": f"processed/{s}.json", "status": "succeeded",
             "error": None}
            for n, s in (("notes.txt", "notes"), ("orders.json", "orders"),
                         ("people.csv", "people"))
        ],
    }  # fmt: skip
    assert "data/orders.json: seen orders" in task.log_tail  # stderr, named by file
    assert "3/3 files processed" in task.log_tail


def test_without_output_the_values_are_in_the_items(project, run_workflow):
    write(project, {"data/a.json": "[1, 2, 3]", "sum.py": SUM_PY})
    execution = run_workflow(make_workflow(processor_task("python", "sum.py", "data/*.json")))
    task = execution.tasks["p"]
    assert task.status is State.SUCCEEDED
    assert task.result["items"][0]["result"] == {"sum": 6}
    assert task.result["items"][0]["output"] is None


SUM_PY = "import json, sys; print(json.dumps({'sum': sum(json.load(sys.stdin))}))"

SLEEPY_PY = """
import json, os, time
started = time.time()
time.sleep(0.3)
print(json.dumps({"started": started, "ended": time.time()}))
"""


def test_files_are_processed_in_parallel_up_to_max_parallel(project, run_workflow):
    write(project, {f"data/{i}.json": str(i) for i in range(6)})
    write(project, {"sleepy.py": SLEEPY_PY})
    started = time.monotonic()
    execution = run_workflow(
        make_workflow(
            processor_task("python", "sleepy.py", output="out/${input}.json", max_parallel=2)
        )
    )
    elapsed = time.monotonic() - started
    assert execution.tasks["p"].status is State.SUCCEEDED
    spans = [json.loads((project / f"out/{i}.json").read_text()) for i in range(6)]
    moments = sorted(
        [(s["started"], 1) for s in spans] + [(s["ended"], -1) for s in spans],
        key=lambda m: (m[0], m[1]),  # an end before a start at the same instant
    )
    running, most = 0, 0
    for _, change in moments:
        running += change
        most = max(most, running)
    assert most == 2  # never more than max_parallel, and really two at once
    assert 0.85 < elapsed < 3.0  # three waves of 0.3 s


BIG_JS = """
const fs = require('fs');
const data = JSON.parse(fs.readFileSync(process.env.INPUT_FILE, 'utf8'));
console.log(JSON.stringify({
  has_input_data: 'INPUT_DATA' in process.env, count: data.length, echo: data,
}));
"""
BIG_PY = """
import json, os, sys
data = json.load(sys.stdin)
print(json.dumps({"has_input_data": "INPUT_DATA" in os.environ, "count": len(data),
                  "echo": data}))
"""


@pytest.mark.parametrize(
    ("kind", "script"),
    [pytest.param("javascript", BIG_JS, marks=needs_node), ("python", BIG_PY)],
)
def test_a_one_mebibyte_input_arrives_through_input_file_and_stdin(
    kind, script, project, run_workflow
):
    rows = [f"row {i:07d} " + "\u00e9" * 40 for i in range(12_000)]
    write(project, {"data/big.json": json.dumps(rows), f"big.{SUFFIX[kind]}": script})
    assert (project / "data/big.json").stat().st_size > 1 << 20
    execution = run_workflow(
        make_workflow(processor_task(kind, f"big.{SUFFIX[kind]}", output="out/${input}.json"))
    )
    task = execution.tasks["p"]
    assert task.status is State.SUCCEEDED, task.error
    written = json.loads((project / "out/big.json").read_text(encoding="utf-8"))
    assert written["has_input_data"] is False and written["count"] == 12_000
    assert written["echo"] == rows  # a single stdout line over 1 MiB, intact


@needs_node
def test_a_processor_that_needs_input_data_says_why_it_is_missing(project, run_workflow):
    write(
        project,
        {
            "data/big.json": json.dumps("x" * (INPUT_DATA_LIMIT + 10)),
            "data/small.json": '"x"',
            "env.js": "console.log(JSON.stringify(JSON.parse(process.env.INPUT_DATA).length))",
        },
    )
    execution = run_workflow(make_workflow(processor_task("javascript", "env.js", "data/*")))
    task = execution.tasks["p"]
    big, small = task.result["items"]
    assert small["status"] == "succeeded" and small["result"] == 1
    assert big["status"] == "failed"
    assert "processor exited with code 1: SyntaxError" in big["error"]
    assert "INPUT_DATA was not set: the input's JSON is over 100 KiB" in big["error"]


PICKY_JS = """
const name = process.env.INPUT_NAME;
if (name === 'bad') { console.error('cannot handle ' + name); process.exit(3); }
if (name === 'chatty') { console.log('hello'); process.exit(0); }
if (name === 'thrower') { throw new Error('boom in ' + name); }
console.log(JSON.stringify({ok: name}));
"""


@needs_node
def test_bad_files_fail_their_items_and_the_others_still_run(project, run_workflow):
    write(
        project,
        {
            "data/a.json": "1",
            "data/bad.json": "2",
            "data/broken.json": '{"unterminated": ',
            "data/chatty.json": "3",
            "data/thrower.json": "4",
            "data/z.json": "5",
            "picky.js": PICKY_JS,
        },
    )
    execution = run_workflow(
        make_workflow(processor_task("javascript", "picky.js", "data/*.json", "out/${input}.json"))
    )
    task = execution.tasks["p"]
    assert task.status is State.FAILED and task.exit_code == 1
    assert {"processed": 6, "succeeded": 2, "failed": 4}.items() <= task.result.items()
    errors = {item["input"]: item["error"] for item in task.result["items"]}
    assert errors["data/a.json"] is None and errors["data/z.json"] is None
    assert errors["data/bad.json"] == "processor exited with code 3: cannot handle bad"
    assert errors["data/broken.json"].startswith("invalid JSON at line 1 column 18")
    assert errors["data/chatty.json"].startswith("processor printed non-JSON output: 'hello'")
    assert errors["data/thrower.json"] == "processor exited with code 1: Error: boom in thrower"
    assert task.error.startswith(
        "2/6 files processed, 4 failed: data/bad.json: processor exited with code 3"
    )
    assert "data/chatty.json: processor printed non-JSON output" in task.error
    assert task.log_tail[-1] == task.error
    assert json.loads((project / "out/a.json").read_text()) == {"ok": "a"}
    assert json.loads((project / "out/z.json").read_text()) == {"ok": "z"}
    assert not (project / "out/bad.json").exists() and not (project / "out/chatty.json").exists()


def test_a_python_processor_error_names_the_exception(project, run_workflow):
    write(project, {"data/a.json": "{}", "fail.py": "raise ValueError('no amount column')"})
    execution = run_workflow(make_workflow(processor_task("python", "fail.py")))
    item = execution.tasks["p"].result["items"][0]
    assert item["error"] == "processor exited with code 1: ValueError: no amount column"


MARKER_PY = "import pathlib; pathlib.Path('ran').touch(); print(1)"


@pytest.mark.parametrize(
    "output",
    [
        "../outside/${input}.json",
        "OUTSIDE/${input}.json",
        "${input}/escape.json",
        "link/x-${input}.json",
    ],
)
def test_output_paths_outside_the_project_are_refused(project, run_workflow, output):
    outside = project.parent / "outside"
    outside.mkdir()
    (project / "link").symlink_to(outside)
    # "...json" has the name ".." once its extension is gone.
    write(project, {"data/...json": "1", "marker.py": MARKER_PY})
    execution = run_workflow(
        make_workflow(
            processor_task(
                "python", "marker.py", "data/...json", output.replace("OUTSIDE", str(outside))
            )
        )
    )
    task = execution.tasks["p"]
    assert task.status is State.FAILED
    assert "outside the project root" in task.error and "refused" in task.error
    assert list(outside.iterdir()) == [] and not (project.parent / "escape.json").exists()
    assert not (project / "ran").exists()  # refused before the processor ran


def test_two_inputs_may_not_write_the_same_output(project, run_workflow):
    write(project, {"data/a.json": "1", "data/a.csv": "x\n1\n", "m.py": MARKER_PY})
    execution = run_workflow(
        make_workflow(processor_task("python", "m.py", "data/*", "out/${input}.json"))
    )
    task = execution.tasks["p"]
    assert task.status is State.FAILED
    assert task.error == (
        "output path out/a.json is the same for 2 input files (data/a.csv, data/a.json): "
        "put ${input} in output.path"
    )
    assert not (project / "ran").exists()


def test_a_missing_processor_script_is_a_clear_failure(project, run_workflow):
    write(project, {"data/a.json": "1"})
    execution = run_workflow(
        make_workflow(processor_task("javascript", "scripts/nope.js", retry={"attempts": 3}))
    )
    task = execution.tasks["p"]
    assert task.status is State.FAILED and task.exit_code == 2
    assert task.error == f"processor script {project / 'scripts/nope.js'} not found"
    assert len(task.attempts) == 1


def test_no_matching_file_fails_the_task(project, run_workflow):
    (project / "data").mkdir()
    write(project, {"data/readme.md": "not json", "s.py": MARKER_PY})
    execution = run_workflow(make_workflow(processor_task("python", "s.py", "data/*.json")))
    task = execution.tasks["p"]
    assert task.status is State.FAILED
    assert task.error.startswith("no files match data/*.json (relative to the project root")


HANG_PY = """
import os, pathlib, time
pathlib.Path("pids", os.environ["INPUT_NAME"]).write_text(str(os.getpid()))
time.sleep(30)
"""


def test_a_timeout_stops_every_processor(project, run_workflow):
    write(project, {f"data/{i}.json": "1" for i in range(3)})
    write(project, {"hang.py": HANG_PY})
    (project / "pids").mkdir()
    started = time.monotonic()
    execution = run_workflow(
        make_workflow(processor_task("python", "hang.py", timeout="1s")), kill_grace=0.5
    )
    task = execution.tasks["p"]
    assert task.status is State.TIMED_OUT
    assert time.monotonic() - started < 3
    pids = [int(path.read_text()) for path in (project / "pids").iterdir()]
    assert len(pids) == 3  # all three were running
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


@needs_node
def test_the_specs_example_runs_unchanged(project, run_workflow):
    write(
        project,
        {
            "data/sales.json": '[{"amount": 2}, {"amount": 3}]',
            "scripts/process-data.js": (
                "const rows = JSON.parse(process.env.INPUT_DATA);\n"
                "console.log(JSON.stringify({total: rows.reduce((s, r) => s + r.amount, 0)}));\n"
            ),
        },
    )
    spec_task = {
        "id": "process-files",
        "name": "Process data files",
        "type": "data_processor",
        "input": {"type": "file", "path": "data/*.json"},
        "processor": {"type": "javascript", "script": "scripts/process-data.js"},
        "output": {"type": "file", "path": "processed/${input}.json"},
    }
    execution = run_workflow({"name": "spec", "tasks": [spec_task]})
    assert execution.tasks["process-files"].status is State.SUCCEEDED
    assert json.loads((project / "processed/sales.json").read_text()) == {"total": 5}
