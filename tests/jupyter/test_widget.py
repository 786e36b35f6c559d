"""The live run widget: state pushed from real runs, throttling, selection, text fallback,
the ESM module (run under node), and the widget inside a real kernel."""

from __future__ import annotations

import asyncio
import json
import queue
import shutil
import subprocess
import sys
import threading
import time
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from jupyter_workflows.engine import WorkflowOrchestrator
from jupyter_workflows.execution.events import (
    AttemptPlaced,
    AttemptStarted,
    OutputLine,
    RunEnded,
    RunStarted,
    TaskEnded,
    TaskProgress,
    TaskStarted,
)
from jupyter_workflows.jupyter.widget import RunView, widget_class

RANK = {"pending": 0, "running": 1}  # every other state is terminal: rank 2
REPO = Path(__file__).resolve().parents[2]


def rank(status: str) -> int:
    return RANK.get(status, 2)


class Pushes:
    """Every value of `tasks` the widget sent, with when it was sent."""

    def __init__(self, view: RunView) -> None:
        self.values: list[list[dict[str, Any]]] = []
        self.times: list[float] = []
        view.widget.observe(self._seen, names="tasks")

    def _seen(self, change: dict[str, Any]) -> None:
        self.values.append(change["new"])
        self.times.append(time.monotonic())

    def statuses(self, task_id: str) -> list[str]:
        seen = [next(t["status"] for t in push if t["id"] == task_id) for push in self.values]
        return [s for i, s in enumerate(seen) if i == 0 or s != seen[i - 1]]

    @property
    def last(self) -> dict[str, dict[str, Any]]:
        return {t["id"]: t for t in self.values[-1]}


def sh(task_id: str, command: str, *deps: str, **extra: Any) -> dict[str, Any]:
    return {"id": task_id, "type": "shell", "command": command, "depends_on": list(deps), **extra}


def test_states_arrive_in_order_and_end_as_the_store_says(project: Path) -> None:
    view = RunView(text=False, throttle=0.05)
    pushes = Pushes(view)
    workflow = {
        "name": "diamond",
        "tasks": [
            sh("a", "sleep 0.4; echo from-a"),
            sh("b", "sleep 0.4", "a"),
            sh("c", "echo from-c", "a"),
            sh("d", "true", "b", "c"),
        ],
    }
    orchestrator = WorkflowOrchestrator(project, sinks=[view])
    execution = orchestrator.execute(workflow)

    assert execution.succeeded
    assert [t["id"] for t in pushes.values[0]] == ["a", "b", "c", "d"]
    assert pushes.statuses("d")[0] == "pending"
    for task_id in "abcd":
        statuses = pushes.statuses(task_id)
        ranks = [rank(s) for s in statuses]
        assert ranks == sorted(ranks), f"{task_id} went backwards: {statuses}"
        assert statuses[-1] == "succeeded"
    # The slow ones were seen running, between pending and succeeded.
    assert pushes.statuses("b") == ["pending", "running", "succeeded"]
    assert "running" in pushes.statuses("a")
    stored = orchestrator.store.get_execution(execution.id)
    assert {i: t["status"] for i, t in pushes.last.items()} == {
        t.id: str(t.status) for t in stored.tasks.values()
    }
    assert pushes.last["b"]["duration"] == pytest.approx(stored.tasks["b"].duration, abs=0.01)
    widget = view.widget
    assert (widget.status, widget.execution_id, widget.workflow) == (
        "succeeded",
        execution.id,
        "diamond",
    )
    assert sorted(map(tuple, widget.edges)) == [("a", "b"), ("a", "c"), ("b", "d"), ("c", "d")]
    assert widget.elapsed == pytest.approx(stored.duration, abs=0.05)
    assert view.execution is not None and view.execution.status == stored.status
    # Ran here, locally: the record says so, the widget does not bother the user with it.
    assert stored.tasks["a"].attempts[0].executor == "local"
    assert all(t["where"] is None for t in widget.tasks)
    assert (widget.executor, widget.cluster, widget.dashboard) == ("", "", "")


def test_retries_are_counted_and_each_attempt_shows_in_the_log(project: Path) -> None:
    view = RunView(text=False, throttle=0.05)
    flaky = sh(
        "flaky",
        "if [ -f marker ]; then echo second-try; else touch marker; echo first-try; exit 1; fi",
        retry={"attempts": 3, "delay": 300},
    )
    orchestrator = WorkflowOrchestrator(project, sinks=[view])
    pushes = Pushes(view)
    execution = orchestrator.execute({"name": "flaky", "tasks": [flaky]})

    assert execution.succeeded
    stored = orchestrator.store.get_execution(execution.id)
    assert pushes.last["flaky"]["attempts"] == len(stored.tasks["flaky"].attempts) == 2
    # During the 300 ms wait the first attempt's count was pushed, still running.
    seen = [(t["status"], t["attempts"]) for p in pushes.values for t in p]
    assert ("running", 1) in seen and seen[-1] == ("succeeded", 2)
    assert view.widget.log_task == "flaky"
    assert view.widget.log_tail == ["first-try", "── attempt 2 ──", "second-try"]


def test_failed_task_error_and_output_are_shown(project: Path) -> None:
    view = RunView(text=False)
    workflow = {
        "name": "breaks",
        "tasks": [
            sh("ok", "echo fine"),
            sh("bad", "echo boom >&2; exit 3", "ok"),
            sh("after", "true", "bad"),
        ],
    }
    orchestrator = WorkflowOrchestrator(project)
    run = orchestrator.prepare(workflow, sinks=[view])  # per-run sinks work too
    execution = asyncio.run(orchestrator.run_prepared(run))  # the async API, on its own loop
    stored = orchestrator.store.get_execution(execution.id)
    last = {t["id"]: t for t in view.widget.tasks}
    assert last["bad"]["status"] == "failed" == str(stored.tasks["bad"].status)
    assert last["bad"]["error"] == stored.tasks["bad"].error and "3" in last["bad"]["error"]
    assert last["after"]["status"] == "skipped" and "bad" in last["after"]["error"]
    # Nothing selected: the log follows the most recently failed task.
    assert view.widget.log_task == "bad"
    assert view.widget.log_tail == ["boom"]
    assert view.widget.status == "failed" and "bad" in view.widget.error


def test_select_changes_the_log_tail_from_python_and_from_the_frontend(project: Path) -> None:
    view = RunView(text=False)
    lines = "; ".join(f"echo a{i}" for i in range(60))
    workflow = {"name": "two", "tasks": [sh("a", lines), sh("b", "echo b-only", "a")]}
    WorkflowOrchestrator(project, sinks=[view]).execute(workflow)
    widget = view.widget
    assert widget.log_task == "b"  # following the run: the last task to end

    view.select("a")
    assert (widget.selected, widget.log_task) == ("a", "a")
    assert widget.log_tail == [f"a{i}" for i in range(20, 60)]  # the last 40 lines

    # A click in the browser arrives as a comm `update` message, like this one.
    widget._handle_msg(
        {"content": {"data": {"method": "update", "state": {"selected": "b"}}}, "buffers": []}
    )
    assert (widget.log_task, widget.log_tail) == ("b", ["b-only"])

    view.select("")
    assert widget.log_task == "b" and widget.selected == ""
    with pytest.raises(ValueError, match="no task 'nope' in this run.*a, b"):
        view.select("nope")


def run_started(*ids: str, execution_id: str = "x1") -> RunStarted:
    tasks: list[dict[str, Any]] = [
        {"id": i, "name": None, "type": "notebook", "depends_on": []} for i in ids
    ]
    return RunStarted(execution_id=execution_id, workflow="fed", tasks=tasks)


def test_notebook_cell_progress_is_shown() -> None:
    view = RunView(text=False, throttle=0.01)
    for event in (
        run_started("nb"),
        TaskStarted(execution_id="x1", task_id="nb", type="notebook"),
        AttemptStarted(execution_id="x1", task_id="nb", attempt=1),
        TaskProgress(
            execution_id="x1", task_id="nb", attempt=1, step=3, total=12, label="cell 3/12: load"
        ),
    ):
        view(event)
    view.flush()
    (task,) = view.widget.tasks
    assert task["progress"] == {"step": 3, "total": 12, "label": "cell 3/12: load"}
    assert task["status"] == "running"
    view(TaskProgress(execution_id="x1", task_id="nb", attempt=1, step=4, total=12))
    view(RunEnded(execution_id="x1", status="cancelled"))
    assert view.widget.tasks[0]["progress"]["step"] == 4


def test_throttled_pushes_from_a_200_task_run(project: Path) -> None:
    view = RunView(text=False, throttle=0.1)
    pushes = Pushes(view)
    tasks = [sh(f"t{i}", "true") for i in range(200)]
    started = time.monotonic()
    execution = WorkflowOrchestrator(project, sinks=[view]).execute(
        {"name": "many", "tasks": tasks}, max_parallel=2
    )
    took = time.monotonic() - started

    assert execution.succeeded
    assert len(pushes.values) == view.pushes
    assert 2 <= view.pushes <= took / 0.1 + 2  # at most one per throttle period, plus the last
    assert view.pushes < 40  # against ~800 events
    times = pushes.times
    gaps = [b - a for a, b in zip(times[:-2], times[1:-1], strict=True)]  # the last is not timed
    assert all(gap >= 0.09 for gap in gaps), gaps
    assert {t["status"] for t in pushes.values[-1]} == {"succeeded"}
    assert len(pushes.values[-1]) == 200


def test_without_a_loop_a_timer_thread_pushes_and_close_flushes() -> None:
    view = RunView(text=False, throttle=0.05)
    view(run_started("a", "b"))
    view(TaskStarted(execution_id="x1", task_id="a"))
    with pytest.raises(RuntimeError):
        asyncio.get_running_loop()  # none here: only a timer thread can push
    deadline = time.monotonic() + 5
    statuses: list[str] = []
    while statuses != ["running", "pending"] and time.monotonic() < deadline:
        time.sleep(0.01)
        statuses = [t["status"] for t in view.widget.tasks]
    assert statuses == ["running", "pending"], "the timer thread never pushed"
    assert 1 <= view.pushes <= 2

    slow = RunView(text=False, throttle=60)
    for event in (run_started("a"), TaskStarted(execution_id="x1", task_id="a")):
        slow(event)
    time.sleep(0.05)
    before = slow.pushes
    slow(OutputLine(execution_id="x1", task_id="a", attempt=1, stream="stdout", line="hello"))
    slow(TaskEnded(execution_id="x1", task_id="a", status="succeeded"))
    assert slow.pushes == before  # throttled: nothing goes out for a minute ...
    slow.close()  # ... unless closed
    assert slow.pushes == before + 1
    assert slow.widget.tasks[0]["status"] == "succeeded" and slow.widget.log_tail == ["hello"]


def test_events_from_threads_interleave_safely() -> None:
    view = RunView(text=False, throttle=0.005)
    ids = [f"t{i}" for i in range(400)]
    view(run_started(*ids))
    errors: list[BaseException] = []

    def feed(chunk: list[str]) -> None:
        try:
            for task_id in chunk:
                view(TaskStarted(execution_id="x1", task_id=task_id))
                view(TaskEnded(execution_id="x1", task_id=task_id, status="succeeded"))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=feed, args=(ids[i::4],)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    view(RunEnded(execution_id="x1", status="succeeded"))
    assert not errors
    assert {t["status"] for t in view.widget.tasks} == {"succeeded"}


TEXT_SCRIPT = """
import sys
from jupyter_workflows.engine import WorkflowOrchestrator
from jupyter_workflows.jupyter.widget import RunView
{setup}
view = RunView()
assert view.text and view.widget is None, "expected text mode"
workflow = {{"name": "text-demo", "tasks": [
    {{"id": "a", "type": "shell", "command": "echo hi"}},
    {{"id": "b", "type": "shell", "command": "exit 4", "depends_on": ["a"]}},
    {{"id": "c", "type": "shell", "command": "true", "depends_on": ["b"]}},
]}}
execution = WorkflowOrchestrator(sys.argv[1], sinks=[view]).execute(
    workflow, raise_on_failure=False
)
view.close()
print("heavy:", sorted(m for m in ("anywidget", "ipywidgets") if m in sys.modules))
"""


@pytest.mark.parametrize(
    "setup",
    [
        "",  # plain python
        "from IPython.terminal.interactiveshell import TerminalInteractiveShell\n"
        "TerminalInteractiveShell.instance()",
    ],
    ids=["plain-python", "terminal-ipython"],
)
def test_text_mode_prints_lines_and_never_imports_anywidget(project: Path, setup: str) -> None:
    script = TEXT_SCRIPT.format(setup=setup)
    done = subprocess.run(
        [sys.executable, "-c", script, str(project)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "workflow 'text-demo' started" in out
    assert "[1/3] ✓ a succeeded" in out
    assert "[2/3] ✗ b failed" in out and "exited with code 4" in out
    assert "[3/3] - c skipped" in out
    assert "workflow 'text-demo' failed in" in out
    assert out.rstrip().endswith("heavy: []")


W1, W2 = "tcp://10.0.0.7:40123", "tcp://10.0.0.8:40555"


def dask_run_events() -> list[Any]:
    """A run on a Dask cluster: `a` lost its first worker and ran again on another; `b` is
    running on the first."""
    eid = "x1"
    started = run_started("a", "b")
    started.executor, started.cluster = "dask", "tcp://10.0.0.5:8786"
    started.dashboard = "http://10.0.0.5:8787/status"
    events: list[Any] = [started, TaskStarted(execution_id=eid, task_id="a")]
    for number, worker in ((1, W1), (2, W2)):
        events += [
            AttemptStarted(execution_id=eid, task_id="a", attempt=number),
            AttemptPlaced(
                execution_id=eid, task_id="a", attempt=number, executor="dask", worker=worker,
                host=f"node-{number}",
            ),
        ]  # fmt: skip
    events += [
        TaskEnded(execution_id=eid, task_id="a", status="succeeded", attempts=2),
        TaskStarted(execution_id=eid, task_id="b"),
        AttemptStarted(execution_id=eid, task_id="b", attempt=1),
        AttemptPlaced(
            execution_id=eid, task_id="b", attempt=1, executor="dask", worker=W1, host="node-1"
        ),
        OutputLine(execution_id=eid, task_id="b", attempt=1, stream="stdout", line="crunching"),
    ]
    return events


def test_where_each_task_runs_and_the_cluster_are_in_the_state() -> None:
    view = RunView(text=False, throttle=0.01)
    for event in dask_run_events():
        view(event)
    view.flush()
    widget = view.widget
    assert (widget.executor, widget.cluster, widget.dashboard) == (
        "dask",
        "tcp://10.0.0.5:8786",
        "http://10.0.0.5:8787/status",
    )
    where = {t["id"]: t["where"] for t in widget.tasks}
    assert where == {"a": W2, "b": W1}  # a's last attempt's worker


def test_text_table_says_where_the_shown_task_runs() -> None:
    view = RunView(text=True)
    for event in dask_run_events():
        view(event)
    text = view._repr_mimebundle_()["text/plain"]
    assert (
        "tasks run on dask at tcp://10.0.0.5:8786 (dashboard: http://10.0.0.5:8787/status)" in text
    )
    assert f"--- b: last output (on {W1}) ---\n  crunching" in text


def test_progress_line_counts_ended_tasks_and_estimates_what_is_left() -> None:
    from jupyter_workflows.jupyter.textview import progress_line

    view = RunView(text=False)
    view(run_started("a", "b", "c", execution_id="p1"))
    view(TaskStarted(execution_id="p1", task_id="a", at=100.0))
    view(TaskEnded(execution_id="p1", task_id="a", status="succeeded", at=101.0))
    execution = view.execution
    assert execution is not None
    execution.started_at = 100.0
    assert progress_line(execution, 30.0, now=110.0) == "1/3 tasks done · about 20.0s left"
    assert progress_line(execution, 5.0, now=110.0) == "1/3 tasks done · longer than the usual 5.0s"
    assert progress_line(execution, None, now=110.0) == "1/3 tasks done"


def test_text_table_lists_tasks_progress_and_the_log() -> None:
    from jupyter_workflows.jupyter.textview import render_table

    view = RunView(text=True)
    for event in (
        run_started("nb", "other"),
        TaskStarted(execution_id="x1", task_id="nb", type="notebook"),
        AttemptStarted(execution_id="x1", task_id="nb", attempt=1),
        TaskProgress(execution_id="x1", task_id="nb", attempt=1, step=3, total=12),
        OutputLine(execution_id="x1", task_id="nb", attempt=1, stream="stdout", line="loading"),
    ):
        view(event)
    text = view._repr_mimebundle_()["text/plain"]
    assert "fed · running" in text
    assert "▶ nb" in text and "cell 3/12" in text
    assert "· other" in text and "pending" in text
    assert "--- nb: last output ---\n  loading" in text  # placed nowhere: no "(on ...)"
    assert "tasks run on" not in text
    assert render_table(None) == "waiting for the run to start"


def test_the_esm_module_ships_in_the_package_and_exports_render() -> None:
    js = resources.files("jupyter_workflows.jupyter").joinpath("widget.js")
    assert js.is_file()
    source = js.read_text()
    assert "export default { render }" in source
    widget = RunView(text=False).widget
    assert isinstance(widget, widget_class())
    assert widget._esm == source  # anywidget syncs this very file to the front-end
    assert "jw-s-running" in widget._css


NODE_HARNESS = r"""
import mod, { layout, progressText } from "ESM_URL";
class El {
  constructor(tag) { Object.assign(this, { tag, children: [], className: "", innerHTML: "",
    textContent: "", listeners: {}, scrollTop: 0, scrollHeight: 0 }); }
  appendChild(child) { this.children.push(child); return child; }
  addEventListener(type, fn) { this.listeners[type] = fn; }
  removeEventListener(type, fn) { if (this.listeners[type] === fn) delete this.listeners[type]; }
}
globalThis.document = { createElement: (tag) => new El(tag) };
const state = STATE;
const handlers = {};
let saves = 0;
const model = {
  get: (k) => state[k],
  set: (k, v) => { state[k] = v; },
  save_changes: () => { saves += 1; },
  on: (e, f) => { (handlers[e] ||= []).push(f); },
  off: (e, f) => { handlers[e] = (handlers[e] || []).filter((g) => g !== f); },
};
const out = { hasRender: typeof mod.render };
const el = new El("div");
const cleanup = mod.render({ model, el });
const [header, dag, logHead, log] = el.children[0].children;
out.progress = [
  progressText(state.tasks, "running", 2, 10),
  progressText(state.tasks, "running", 12, 10),
  progressText(state.tasks, "running", 2, 0),
];
out.first = { header: header.innerHTML, dag: dag.innerHTML, logHead: logHead.innerHTML,
  log: log.textContent };
state.tasks = state.tasks.map((t) => ({ ...t, status: "succeeded" }));
for (const f of handlers["change:tasks"]) f();
await new Promise((r) => setTimeout(r, 10));
out.redrawn = dag.innerHTML;
const target = (id) => ({ closest: () => ({ getAttribute: () => id }) });
const click = (id) => dag.listeners.click({ target: target(id) });
click("b"); out.afterClick = state.selected;
click("b"); out.afterSecondClick = state.selected;
out.saves = saves;
const boxes = layout(LAYOUT_TASKS).boxes;
out.layout = Object.fromEntries([...boxes].map(([id, b]) => [id, [b.x, b.y, b.w]]));
cleanup();
out.handlersLeft = Object.values(handlers).reduce((n, list) => n + list.length, 0);
console.log(JSON.stringify(out));
"""


def task_dict(task_id: str, status: str, *deps: str, **extra: Any) -> dict[str, Any]:
    base = {"id": task_id, "name": task_id, "type": "shell", "parent": None,
            "depends_on": list(deps), "status": status, "started_at": None, "ended_at": None,
            "duration": 1.5, "attempts": 1, "error": None, "progress": None}  # fmt: skip
    return {**base, **extra}


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_the_esm_module_renders_the_dag_and_selects_on_click(tmp_path: Path) -> None:
    js = resources.files("jupyter_workflows.jupyter").joinpath("widget.js")
    state = {
        "title": "", "workflow": "wf", "execution_id": "e1", "status": "running", "error": "",
        "elapsed": 2.0, "expected": 10.0, "selected": "", "log_task": "b",
        "log_tail": ["line 1", "line 2"],
        "edges": [["a", "b"]], "executor": "dask", "cluster": "tcp://10.0.0.5:8786",
        "dashboard": "http://10.0.0.5:8787/status",
        "tasks": [
            task_dict("a", "failed", error="exited with code 3"),
            task_dict("b", "running", "a", attempts=2,
                      progress={"step": 3, "total": 12, "label": None}, where=W1),
        ],
    }  # fmt: skip
    layout_tasks = [
        task_dict("a", "pending"), task_dict("b", "pending", "a"), task_dict("c", "pending", "b"),
        task_dict("kid", "pending", parent="b"),
    ]  # fmt: skip
    harness = (
        NODE_HARNESS.replace("ESM_URL", Path(str(js)).as_uri())
        .replace("STATE", json.dumps(state))
        .replace("LAYOUT_TASKS", json.dumps(layout_tasks))
    )
    (tmp_path / "harness.mjs").write_text(harness)
    done = subprocess.run(
        ["node", str(tmp_path / "harness.mjs")], capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["hasRender"] == "function"
    first = out["first"]
    assert 'data-id="a"' in first["dag"] and 'data-id="b"' in first["dag"]
    assert "jw-s-failed" in first["dag"] and "jw-s-running" in first["dag"]
    assert "cell 3/12" in first["dag"] and "↻2" in first["dag"]
    assert "exited with code 3" in first["dag"]  # in the failed box's tooltip
    assert 'class="jw-edge"' in first["dag"]
    assert "1 failed" in first["header"] and "1 running" in first["header"]
    assert "1/2 tasks done · about 8" in first["header"]  # the ETA from the usual 10 s
    assert out["progress"] == [
        "1/2 tasks done · about 8.0s left",
        "1/2 tasks done · longer than the usual 10.0s",
        "1/2 tasks done",
    ]
    assert "output of <b>b</b>" in first["logHead"]
    assert f"running on <code>{W1}</code>" in first["logHead"]
    assert f"on {W1}" in first["dag"]  # in b's tooltip
    assert "on dask at tcp://10.0.0.5:8786" in first["header"]
    assert '<a class="jw-dashboard" href="http://10.0.0.5:8787/status"' in first["header"]
    assert first["log"] == "line 1\nline 2"
    assert "jw-s-running" not in out["redrawn"] and "jw-s-succeeded" in out["redrawn"]
    assert (out["afterClick"], out["afterSecondClick"], out["saves"]) == ("b", "", 2)
    boxes = out["layout"]
    assert boxes["a"][0] < boxes["b"][0] < boxes["c"][0]  # a column per dependency depth
    assert boxes["kid"][0] > boxes["b"][0] and boxes["kid"][1] > boxes["b"][1]  # under b, indented
    assert boxes["kid"][2] < boxes["b"][2]
    assert out["handlersLeft"] == 0


KERNEL_CODE = """
from jupyter_workflows.engine import WorkflowOrchestrator
from jupyter_workflows.jupyter.widget import RunView
view = RunView(text={text}, throttle=0.05)
print("mode:", view.text, type(view.widget).__name__)
view.display()
workflow = {{"name": "in-kernel", "tasks": [
    {{"id": "a", "type": "shell", "command": "sleep 0.2; echo hi"}},
    {{"id": "b", "type": "shell", "command": "true", "depends_on": ["a"]}},
]}}
execution = WorkflowOrchestrator({root!r}, sinks=[view]).execute(workflow)
print("status:", execution.status)
"""


@pytest.fixture(scope="module")
def kernel():
    from jupyter_client.manager import start_new_kernel

    manager, client = start_new_kernel(kernel_name="python3", cwd=str(REPO))
    yield client
    client.stop_channels()
    manager.shutdown_kernel(now=True)


def run_in_kernel(client: Any, code: str) -> list[dict[str, Any]]:
    msg_id = client.execute(code)
    messages: list[dict[str, Any]] = []
    while True:
        try:
            msg = client.get_iopub_msg(timeout=60)
        except queue.Empty:  # pragma: no cover - a hung kernel fails the test here
            raise AssertionError(f"kernel went quiet; got {messages}") from None
        if msg["parent_header"].get("msg_id") != msg_id and msg["msg_type"] != "comm_msg":
            continue
        messages.append(msg)
        idle = msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle"
        if idle and msg["parent_header"].get("msg_id") == msg_id:
            return messages


def test_in_a_kernel_the_widget_is_displayed_and_updated_over_its_comm(
    kernel: Any, project: Path
) -> None:
    messages = run_in_kernel(kernel, KERNEL_CODE.format(text="None", root=str(project)))
    errors = [m["content"] for m in messages if m["msg_type"] == "error"]
    assert not errors, errors
    stdout = "".join(m["content"]["text"] for m in messages if m["msg_type"] == "stream")
    assert "mode: False RunWidget" in stdout and "status: succeeded" in stdout
    opened = [
        m["content"]
        for m in messages
        if m["msg_type"] == "comm_open"
        and m["content"]["data"]["state"]["_model_name"] == "AnyModel"
    ]
    assert len(opened) == 1 and opened[0]["target_name"] == "jupyter.widget"
    comm_id = opened[0]["comm_id"]
    shown = [m for m in messages if m["msg_type"] == "display_data"]
    view_mime = "application/vnd.jupyter.widget-view+json"
    assert shown[0]["content"]["data"][view_mime]["model_id"] == comm_id
    updates = [
        m["content"]["data"]["state"]
        for m in messages
        if m["msg_type"] == "comm_msg" and m["content"]["comm_id"] == comm_id
        and "tasks" in m["content"]["data"].get("state", {})
    ]  # fmt: skip
    assert len(updates) >= 2
    history = [[t["status"] for t in state["tasks"]] for state in updates]
    assert ["running", "pending"] in history
    assert history[-1] == ["succeeded", "succeeded"]


def test_in_a_kernel_text_mode_updates_one_output(kernel: Any, project: Path) -> None:
    messages = run_in_kernel(kernel, KERNEL_CODE.format(text="True", root=str(project)))
    assert not [m for m in messages if m["msg_type"] == "error"]
    shown = [m for m in messages if m["msg_type"] == "display_data"]
    updated = [m for m in messages if m["msg_type"] == "update_display_data"]
    assert len(shown) == 1 and updated
    display_id = shown[0]["content"]["transient"]["display_id"]
    assert {m["content"]["transient"]["display_id"] for m in updated} == {display_id}
    final = updated[-1]["content"]["data"]["text/plain"]
    assert "in-kernel · succeeded" in final and "2 succeeded" in final
    assert not [m for m in messages if m["msg_type"] == "comm_open"]


def test_text_auto_in_an_ipython_shell_that_is_not_a_kernel() -> None:
    from IPython import get_ipython
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()  # the one other tests made, if any: same singleton
    assert get_ipython() is shell
    assert "ipykernel" not in type(shell).__module__
    assert RunView().text is True
    assert RunView(text=False).widget is not None  # forcing the widget works anywhere


def test_one_view_can_show_a_second_run(project: Path) -> None:
    view = RunView(text=False, throttle=0.05)
    orchestrator = WorkflowOrchestrator(project, sinks=[view])
    orchestrator.execute({"name": "first", "tasks": [sh("a", "true")]})
    pushes = Pushes(view)
    second = orchestrator.execute(
        {"name": "second", "tasks": [sh("x", "sleep 0.3"), sh("y", "true", "x")]}
    )
    assert [t["id"] for t in view.widget.tasks] == ["x", "y"]
    assert view.widget.execution_id == second.id and view.widget.workflow == "second"
    assert pushes.statuses("x") == ["running", "succeeded"]  # pushed during the run too


def test_the_widgets_cancel_stops_the_run_and_says_who_asked(project: Path) -> None:
    from jupyter_workflows.execution.states import State

    view = RunView(text=False, throttle=0.01)
    orchestrator = WorkflowOrchestrator(project, sinks=[view], kill_grace=2.0)
    ended: list[Any] = []
    runner = threading.Thread(
        target=lambda: ended.append(
            orchestrator.execute(
                {"name": "nap", "tasks": [sh("nap", "sleep 300"), sh("after", "true", "nap")]},
                raise_on_failure=False,
            )
        ),  # fmt: skip
    )
    runner.start()
    deadline = time.monotonic() + 20
    while view.widget.status != "running" or not any(
        t["status"] == "running" for t in view.widget.tasks
    ):
        assert time.monotonic() < deadline, "the run never started"
        time.sleep(0.02)
    view.widget._handle_custom_msg({"type": "cancel"}, [])  # the front-end's button
    runner.join(10)
    assert not runner.is_alive()
    execution = ended[0]
    assert execution.status is State.CANCELLED and execution.cancelled_by == "widget"
    assert view.widget.status == "cancelled"
    assert view.widget.error.startswith("cancelled on request from widget")
    assert orchestrator.store.get_execution(execution.id).cancelled_by == "widget"

    view._cancel_clicked()  # again, once it has ended: the widget says why not
    assert "is not running: it has ended: cancelled" in view.widget.cancel_note


def test_the_widgets_cancel_of_an_unrecorded_run_says_how_to_stop_it(project: Path) -> None:
    view = RunView(text=False)
    WorkflowOrchestrator(project, sinks=[view], record=False).execute(
        {"name": "quick", "tasks": [sh("a", "true")]}
    )
    view._cancel_clicked()
    assert "not recorded" in view.widget.cancel_note and "interrupt" in view.widget.cancel_note
