"""The live run widget: an event sink that shows a run's DAG, states and log tail in a notebook.

``RunView`` is the sink. Each event is folded into its own ``Execution`` record and marks the
view dirty; the state is pushed to the front-end at most every ``throttle`` seconds (on the
running event loop when there is one, else from a timer thread) and once more when the run
ends, so a fast 500-task run costs a handful of pushes, not thousands.

In a kernel with a widget front-end (ipykernel) the view is a ``RunWidget`` (anywidget, the
ESM module ``widget.js`` beside this file). Elsewhere (terminal IPython, plain Python) it
degrades to text (``textview``). anywidget and IPython are imported only when a widget is
made or shown, so text mode never imports them.
"""

from __future__ import annotations

import asyncio
import functools
import importlib.util
import sys
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

from ..execution.events import (
    AttemptStarted,
    Event,
    OutputLine,
    RunEnded,
    RunStarted,
    TaskEnded,
    TaskStarted,
)
from ..execution.records import Execution, TaskRecord
from ..execution.states import FAILURES, State
from ..ui.text import ran_elsewhere, ran_on

HERE = Path(__file__).resolve().parent
LOG_TAIL = 40  # lines of the selected task's output shown under the DAG
ERROR_CHARS = 400  # a task's error as shown in its box's tooltip and over the log


def has_widget_frontend() -> bool:
    """True inside a Jupyter kernel (ipykernel) with anywidget installed.

    A kernel cannot know whether its front-end renders widgets; a ZMQ kernel is taken to have
    one (JupyterLab, Notebook 7, VS Code all do). Terminal IPython and plain Python are text.
    """
    if "IPython" not in sys.modules:  # never imported: certainly not in a kernel
        return False
    from IPython import get_ipython

    shell = get_ipython()
    if shell is None or "ipykernel" not in type(shell).__module__:
        return False
    return importlib.util.find_spec("anywidget") is not None


@functools.cache
def widget_class() -> type[Any]:
    """The ``RunWidget`` anywidget class, built on first use so importing this module stays
    free of anywidget/ipywidgets."""
    import anywidget
    import traitlets as t

    class RunWidget(anywidget.AnyWidget):  # type: ignore[misc]
        """The synced state of one run; ``widget.js`` draws it."""

        _esm = HERE / "widget.js"
        _css = HERE / "widget.css"
        title = t.Unicode("").tag(sync=True)
        workflow = t.Unicode("").tag(sync=True)
        execution_id = t.Unicode("").tag(sync=True)
        status = t.Unicode("pending").tag(sync=True)
        error = t.Unicode("").tag(sync=True)
        elapsed = t.Float(0.0).tag(sync=True)
        # How long this workflow usually takes (s; 0: unknown): the progress line's ETA.
        expected = t.Float(0.0).tag(sync=True)
        # Where tasks run, when not on this machine: "dask", the scheduler, its dashboard.
        executor = t.Unicode("").tag(sync=True)
        cluster = t.Unicode("").tag(sync=True)
        dashboard = t.Unicode("").tag(sync=True)
        # Untyped lists: per-element validation of 500 task dicts would cost every push.
        tasks: t.List[Any] = t.List().tag(sync=True)
        edges: t.List[Any] = t.List().tag(sync=True)
        selected = t.Unicode("").tag(sync=True)  # the user's pick; "" follows the run
        log_task = t.Unicode("").tag(sync=True)  # whose output log_tail is
        log_tail: t.List[Any] = t.List().tag(sync=True)
        # What became of the user's Cancel: asked, or why it could not be (shown by the run).
        cancel_note = t.Unicode("").tag(sync=True)

        def send_state(self, key: Any = None) -> None:
            """ipywidgets' ``send_state`` minus its search for binary buffers: this state holds
            none, and walking every task dict for them was half of what a push cost."""
            state = self.get_state(key=key)
            if not state:
                return
            lock = self._property_lock
            for name in lock.keys() & state.keys():  # keeps ipywidgets' echo guard current
                lock[name] = state[name]
            self._send({"method": "update", "state": state, "buffer_paths": []})

    RunWidget.__module__, RunWidget.__qualname__ = __name__, "RunWidget"
    return RunWidget


def __getattr__(name: str) -> Any:
    if name == "RunWidget":  # `from jupyter_workflows.jupyter.widget import RunWidget`
        return widget_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def task_state(task: TaskRecord, now: float) -> dict[str, Any]:
    """One task as the widget draws it; running tasks get their elapsed time so far, and
    ``where`` says which worker (or machine) ran it when that is not this machine."""
    duration = task.duration
    if task.status is State.RUNNING and task.started_at is not None:
        duration = max(0.0, now - task.started_at)
    progress = None
    if task.progress is not None:
        progress = {k: task.progress.get(k) for k in ("step", "total", "label")}
    return {
        "id": task.id,
        "name": task.name or task.id,
        "type": task.type,
        "parent": task.parent,
        "depends_on": list(task.depends_on),
        "status": task.status.value,
        "started_at": task.started_at,
        "ended_at": task.ended_at,
        "duration": duration,
        "attempts": len(task.attempts),
        "error": task.error[:ERROR_CHARS] if task.error else None,
        "progress": progress,
        "where": ran_on(task) if ran_elsewhere(task) else None,
        # Succeeded without running: "resumed" or "cached", from execution ``reused_from``.
        "reused": task.reused,
        "reused_from": task.reused_from,
    }


class RunView:
    """Shows one run live: pass it as a sink, then ``display()`` it.

    ``WorkflowOrchestrator(root, sinks=[view])`` or ``orchestrator.prepare(wf, sinks=[view])``.
    ``text=None`` picks the widget inside a Jupyter kernel and text elsewhere; ``text=True``
    forces text (progress lines, or an updating table in a kernel), ``text=False`` the widget
    (it works headless too: its state is plain traitlets). Calling the view is cheap and
    thread-safe; ``close()`` pushes the last state (the run's end does so by itself).
    """

    def __init__(
        self,
        *,
        title: str | None = None,
        throttle: float = 0.1,
        text: bool | None = None,
        expected: float | None = None,
    ) -> None:
        self.title = title
        self.expected = expected  # seconds a run usually takes: the progress line's ETA
        self.throttle = max(0.0, float(throttle))
        self.text = (not has_widget_frontend()) if text is None else bool(text)
        self.execution: Execution | None = None
        self.widget: Any = None
        self.pushes = 0  # how many times state went out (for tests and curiosity)
        self._lock = threading.RLock()
        self._dirty = False
        self._scheduled = False
        self._last_push = float("-inf")
        self._selected = ""
        self._reset()
        self._lines: Any = None
        self._table: Any = None
        self._display: Any = None  # the widget's output, to refresh its text fallback
        self._summarised = ""  # the execution whose final summary that output has
        if not self.text:
            self.widget = widget_class()(title=title or "", expected=expected or 0.0)
            self.widget.observe(self._on_selected, names="selected")
            self.widget.on_msg(self._on_message)
        else:
            from .textview import TextLines, TextTable

            if _in_kernel():
                self._table = TextTable(title, expected)
            else:
                self._lines = TextLines()

    def _reset(self) -> None:
        self._tails: dict[str, deque[str]] = {}
        self._running: dict[str, None] = {}  # insertion-ordered set: newest last
        self._last_failed = ""
        self._last_ended = ""
        self._changed: set[str] = set()
        self._cache: dict[str, dict[str, Any]] = {}
        self._order: list[str] = []
        self._edges: list[list[str]] = []

    # -- the sink -------------------------------------------------------------------------
    def __call__(self, event: Event) -> None:
        """Fold one event; state goes out later (throttled), or now when the run ends."""
        with self._lock:
            if self.execution is None or isinstance(event, RunStarted):
                self._start(event)
            assert self.execution is not None
            self.execution.apply(event)
            self._note(event)
            if self._lines is not None:  # printed as they come: nothing to throttle
                self._lines.event(event, self.execution)
            elif isinstance(event, RunEnded):
                # A timer still pending may never fire (the run's loop closes): forget it.
                self._dirty, self._scheduled = True, False
                self.flush()
            else:
                self._mark_dirty()

    def _start(self, event: Event) -> None:
        workflow = getattr(event, "workflow", "") or (self.title or "")
        self.execution = Execution(id=event.execution_id, workflow=workflow)
        self._scheduled = False  # a timer left on a previous run's (closed) loop never fires
        self._reset()

    def _note(self, event: Event) -> None:
        """Keep what the record does not: longer log tails and which task to show."""
        if isinstance(event, OutputLine):
            tail = self._tails.get(event.task_id)
            if tail is None:
                tail = self._tails[event.task_id] = deque(maxlen=LOG_TAIL)
            tail.append(event.line)
            return
        task_id = getattr(event, "task_id", None)
        if task_id is None:
            return
        self._changed.add(task_id)
        if isinstance(event, TaskStarted):
            self._running[task_id] = None
        elif isinstance(event, TaskEnded):
            self._running.pop(task_id, None)
            self._last_ended = task_id
            if event.status in _FAILURE_NAMES:
                self._last_failed = task_id
        elif isinstance(event, AttemptStarted) and event.attempt > 1:
            tail = self._tails.setdefault(task_id, deque(maxlen=LOG_TAIL))
            tail.append(f"── attempt {event.attempt} ──")

    # -- throttling -----------------------------------------------------------------------
    def _mark_dirty(self) -> None:
        self._dirty = True
        if self._scheduled:
            return
        self._scheduled = True
        delay = max(0.0, self._last_push + self.throttle - time.monotonic())
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            timer = threading.Timer(delay, self._due)
            timer.daemon = True
            timer.start()
        else:
            loop.call_later(delay, self._due)

    def _due(self) -> None:
        with self._lock:
            self._scheduled = False
            if self._dirty:
                self.flush()

    def flush(self) -> None:
        """Push the current state now (if anything changed since the last push)."""
        with self._lock:  # held while pushing, so pushes from two threads keep their order
            if self.execution is None or not self._dirty:
                return
            self._dirty = False
            self._last_push = time.monotonic()
            self.pushes += 1
            if self.widget is not None:
                self._push_widget(self.execution)
            elif self._table is not None:
                self._table.update(self.execution, *self._log())

    def close(self) -> None:
        """Push the final state; the view stays on screen. Its output's text and HTML
        summary is refreshed here, not at the run's end: close is called on the cell's thread,
        whose output messages reach the cell (the run's own thread may not be that)."""
        with self._lock:
            self._dirty = self._dirty or self.execution is not None
            self.flush()
            if self.execution is not None:
                self._update_display(self.execution)

    # -- state ----------------------------------------------------------------------------
    def _push_widget(self, execution: Execution) -> None:
        now = time.time()
        if len(self._order) != len(execution.tasks):  # new tasks (composite children) appeared
            self._order = list(execution.tasks)
            self._edges = [[dep, t.id] for t in execution.tasks.values() for dep in t.depends_on]
            self._changed.update(self._order)
        records = execution.tasks
        # Never mutate a pushed dict: the previous `tasks` value shares the unchanged ones.
        for task_id in self._changed.union(self._running):
            self._cache[task_id] = task_state(records[task_id], now)
        self._changed.clear()
        widget = self.widget
        with widget.hold_sync():  # one comm message per push
            widget.workflow = execution.workflow or ""
            widget.execution_id = execution.id
            widget.status = str(execution.status)
            widget.error = execution.error or ""
            if execution.status is not State.RUNNING and widget.cancel_note.startswith("cancel "):
                widget.cancel_note = ""  # the run's status and error say how it ended
            widget.elapsed = _elapsed(execution, now)
            remote = execution.executor not in (None, "local")
            widget.executor = execution.executor if remote else ""
            widget.cluster = (execution.cluster or "") if remote else ""
            widget.dashboard = (execution.dashboard or "") if remote else ""
            widget.edges = self._edges
            widget.tasks = [self._cache[task_id] for task_id in self._order]
            self._push_log()

    def _push_log(self) -> None:
        task_id, tail = self._log()
        self.widget.log_task = task_id
        self.widget.log_tail = tail

    def _log(self) -> tuple[str, list[str]]:
        """Whose output to show and its last lines: the user's pick, else the newest running
        task, else the last failed one, else the last to end."""
        tasks = self.execution.tasks if self.execution is not None else {}
        task_id = self._selected if self._selected in tasks else ""
        if not task_id and self._running:
            task_id = next(reversed(self._running))
        task_id = task_id or self._last_failed or self._last_ended
        return task_id, list(self._tails.get(task_id, ()))

    # -- selection ------------------------------------------------------------------------
    def select(self, task_id: str) -> None:
        """Show ``task_id``'s log tail; ``""`` goes back to following the run."""
        with self._lock:
            known = self.execution.tasks if self.execution is not None else None
            if task_id and known is not None and task_id not in known:
                names = ", ".join(list(known)[:10]) + (", ..." if len(known) > 10 else "")
                raise ValueError(f"no task '{task_id}' in this run (tasks: {names})")
            if self.widget is not None:
                self.widget.selected = task_id  # the observer updates the log tail
            else:
                self._selected = task_id
                self._dirty = self.execution is not None
                self.flush()

    def _on_selected(self, change: dict[str, Any]) -> None:
        # Also called from the front-end (a click): unknown ids simply follow the run.
        with self._lock:
            self._selected = change["new"] or ""
            with self.widget.hold_sync():
                self._push_log()

    # -- cancel ---------------------------------------------------------------------------
    def cancel(self, *, by: str = "widget") -> None:
        """Ask the run shown to stop, wherever it runs: a request through its project's
        store, which its runner sees within a second; it records the run ``cancelled`` with
        ``cancelled_by`` = ``by``. Returns once asked. Raises WorkflowError when there is no
        recorded run to cancel, ExecutionNotRunning when it has ended."""
        from ..errors import ExecutionNotFound, WorkflowError
        from ..project import default_store_path
        from ..store import ExecutionStore

        execution = self.execution
        if execution is None or not execution.project_root:
            raise WorkflowError("no run to cancel: it has not started")
        store = ExecutionStore(default_store_path(Path(execution.project_root)))
        try:
            store.cancel(execution.id, by=by, wait=0)
        except ExecutionNotFound:  # a run without a record: nobody can name it
            raise WorkflowError(
                "this run is not recorded, so it cannot be cancelled from here: "
                "interrupt the kernel to stop it"
            ) from None

    def _on_message(self, _widget: Any, content: Any, _buffers: Any) -> None:
        # The front-end's Cancel. Off the kernel's thread: the request reads the store, and
        # the run may be on this very loop.
        if isinstance(content, dict) and content.get("type") == "cancel":
            threading.Thread(target=self._cancel_clicked, daemon=True).start()

    def _cancel_clicked(self) -> None:
        from ..errors import WorkflowError

        try:
            self.cancel(by="widget")
        except WorkflowError as exc:
            note = str(exc)
        else:
            note = "cancel requested: the run stops within a second"
        with self._lock:
            self.widget.cancel_note = note

    # -- display --------------------------------------------------------------------------
    def display(self) -> None:
        """Show the view in the current output (the widget, or the text table).

        The widget's output also carries a text and HTML summary of the run, refreshed when
        the run ends: what a saved, converted or previewed notebook shows in its place."""
        if self.widget is not None:
            from IPython.display import display

            with self._lock:
                self._display = display(self._bundle(), raw=True, display_id=True)
        elif self._table is not None:
            with self._lock:
                self._table.show(self.execution, *self._log())
        elif self._lines is not None:
            self._lines.show(self.execution, self.title)

    def _update_display(self, execution: Execution) -> None:
        """Once the run has ended, put its final summary in the widget's output (one
        ``update_display_data``: the widget itself is live and needs none)."""
        if self._display is None or execution.ended_at is None:
            return
        if self._summarised == execution.id:
            return
        self._summarised = execution.id
        self._display.update(self._bundle(), raw=True)

    def _bundle(self) -> dict[str, Any]:
        """The widget's view plus the run's summary as text and HTML."""
        from .summary import summary_html, summary_text

        data = self.widget._repr_mimebundle_()
        if isinstance(data, tuple):  # anywidget gives (data, metadata)
            data = data[0]
        return {
            **data,
            "text/plain": summary_text(self.execution, self.title),
            "text/html": summary_html(self.execution, self.title),
        }

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        if self.widget is not None:
            with self._lock:
                return self._bundle()
        from .textview import render_table

        with self._lock:
            return {
                "text/plain": render_table(
                    self.execution, *self._log(), title=self.title, expected=self.expected
                )
            }


_FAILURE_NAMES = frozenset(str(s) for s in FAILURES)


def _elapsed(execution: Execution, now: float) -> float:
    if execution.started_at is None:
        return 0.0
    return max(0.0, (execution.ended_at or now) - execution.started_at)


def _in_kernel() -> bool:
    """Inside a Jupyter kernel, text is an updating output; elsewhere, printed lines."""
    if "IPython" not in sys.modules:
        return False
    from IPython import get_ipython

    shell = get_ipython()
    return shell is not None and "ipykernel" in type(shell).__module__
