"""Plain-text rendering of runs, shared by every surface (terminal, notebook, charts).

A consumer of the event stream that prints one line per event worth telling
(``PlainRenderer``), the task tree in display order, the closing summary, the state icons and
colours, how a moment is written, and where tasks ran.
"""

from __future__ import annotations

import functools
import socket
import sys
import time
from collections.abc import Iterable
from datetime import datetime
from typing import Any, TextIO

from ..definition.durations import format_duration
from ..execution.events import AttemptEnded, Event, OutputLine, RunStarted, TaskEnded, TaskStarted
from ..execution.records import Execution, TaskRecord
from ..execution.states import State

# "resumed" and "cached" are not states but how a succeeded task that did not run is shown
# (``shown_state``): its result was reused from an earlier execution.
ICONS = {
    "pending": "·", "running": "▶", "succeeded": "✓", "failed": "✗", "timed_out": "⏱",
    "cancelled": "■", "skipped": "-", "crashed": "☠", "resumed": "↺", "cached": "≡",
}  # fmt: skip
COLORS = {
    "pending": "dim", "running": "cyan", "succeeded": "green", "failed": "red",
    "timed_out": "red", "cancelled": "yellow", "skipped": "dim", "crashed": "magenta",
    "resumed": "green", "cached": "blue",
}  # fmt: skip


def shown_state(task: TaskRecord | TaskEnded) -> str:
    """A task's state as surfaces show it: its status, or "resumed"/"cached" for a task
    that succeeded by reusing an earlier execution's result."""
    return task.reused or str(task.status)


class PlainRenderer:
    """One line per event worth telling, for logs and pipes."""

    def __init__(self, stream: TextIO | None = None, *, timestamps: bool = False):
        self.out = stream or sys.stdout
        self.live_tasks: set[str] = set()
        self.show_all_output = False
        self.timestamps = timestamps  # each line starts with its local time (logs, cron)

    def __call__(self, event: Event) -> None:
        line = self.describe(event)
        if line is not None:
            self._print(line)

    def _print(self, text: str) -> None:
        if self.timestamps:
            now = datetime.now().astimezone().isoformat(timespec="seconds")
            text = "\n".join(f"{now} {line}" for line in text.split("\n"))
        print(text, file=self.out, flush=True)

    def describe(self, event: Event) -> str | None:
        if isinstance(event, OutputLine):
            if self.show_all_output or event.task_id in self.live_tasks:
                return f"  {event.task_id} | {event.line}"
            return None
        if isinstance(event, TaskStarted):
            return f"{ICONS['running']} {event.task_id} started"
        if isinstance(event, AttemptEnded) and event.retry_in is not None:
            return (
                f"↻ {event.task_id} attempt {event.attempt} {event.status}: {event.error}; "
                f"retrying in {format_duration(event.retry_in)}"
            )
        if isinstance(event, TaskEnded):
            return _task_line(event)
        if isinstance(event, RunStarted):
            self.live_tasks = {t["id"] for t in event.tasks if t.get("live_output")}
            line = f"workflow '{event.workflow}' started (execution {event.execution_id})"
            where = placement_line(event)
            return line if where is None else f"{line}\n{where}"
        return None

    def close(self, execution: Execution) -> None:
        for line in summary_lines(execution):
            self._print(line)


def placement_line(run: RunStarted | Execution) -> str | None:
    """Where a run's tasks execute, when not on this machine: the cluster and its dashboard."""
    if run.executor in (None, "local"):
        return None
    line = f"tasks run on {run.executor}" + (f" at {run.cluster}" if run.cluster else "")
    return line + (f" (dashboard: {run.dashboard})" if run.dashboard else "")


@functools.cache
def this_host() -> str:
    return socket.gethostname()


def ran_on(task: TaskRecord) -> str:
    """Where the task's last attempt ran: its worker's address on a cluster, else its machine;
    ``""`` when it was not placed (not started, a composite, a record from before placement)."""
    if not task.attempts:
        return ""
    last = task.attempts[-1]
    return last.worker or last.host or ""


def ran_elsewhere(task: TaskRecord, here: str | None = None) -> bool:
    """Whether an attempt of ``task`` ran on a cluster or on another machine than ``here``
    (default: this one). Surfaces say where tasks ran only then: a local run stays tidy."""
    here = here or this_host()
    return any(
        a.worker or a.executor not in (None, "local") or (a.host and a.host != here)
        for a in task.attempts
    )


def as_tree(tasks: Iterable[TaskRecord]) -> list[tuple[int, TaskRecord]]:
    """Tasks in display order, each child right under its parent, with its depth."""
    records = list(tasks)
    known = {t.id for t in records}
    children: dict[str | None, list[TaskRecord]] = {}
    for task in records:
        parent = task.parent if task.parent in known else None
        children.setdefault(parent, []).append(task)
    ordered: list[tuple[int, TaskRecord]] = []

    def visit(parent: str | None, depth: int) -> None:
        for task in children.get(parent, []):
            ordered.append((depth, task))
            visit(task.id, depth + 1)

    visit(None, 0)
    return ordered


def _task_line(event: TaskEnded) -> str:
    if event.reused:
        source = (event.reused_from or "")[:8]
        how = "reused from" if event.reused == "resumed" else "cached: reused from"
        return f"{ICONS.get(event.reused, '?')} {event.task_id} {how} execution {source}"
    took = f" in {format_duration(event.at - event.started_at)}" if event.started_at else ""
    text = f"{ICONS.get(event.status, '?')} {event.task_id} {event.status}{took}"
    if event.error and event.status != "succeeded":
        text += f": {event.error}"
    notebook = executed_notebook(event)
    return text if notebook is None else f"{text}\n  executed notebook: {notebook}"


def executed_notebook(event: TaskEnded) -> str | None:
    """Where a notebook task's executed notebook was kept (failed runs too: that is where
    the error is), or None for any other task."""
    if event.type != "notebook" or not isinstance(event.result, dict):
        return None
    output = event.result.get("output")
    return output if isinstance(output, str) else None


def summary_lines(execution: Execution) -> list[str]:
    lines = []
    for task in execution.tasks.values():
        if task.status.is_failure and task.log_tail:
            lines.append(f"--- last output of {task.id} ---")
            lines.extend(f"  {line}" for line in task.log_tail[-10:])
    counts: dict[str, int] = {}
    for task in execution.tasks.values():
        counts[shown_state(task)] = counts.get(shown_state(task), 0) + 1
    tally = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
    if execution.error and execution.status in (State.CRASHED, State.CANCELLED):
        # A failed run's error only lists its failed tasks, shown above; a crash or a
        # cancel has a reason of its own that no task line carries.
        lines.append(f"{execution.status}: {execution.error}")
    lines.append(
        f"workflow '{execution.workflow}' {execution.status} in "
        f"{format_duration(execution.duration)} ({tally}); execution {execution.id}"
    )
    if execution.resumed_from:
        lines.append(f"resumed from execution {execution.resumed_from}")
    return lines


class NullRenderer:
    def __call__(self, event: Event) -> None:
        pass

    def close(self, execution: Execution) -> None:
        pass


def when(value: Any) -> str:
    """A moment (epoch seconds or a datetime) in local time, ``-`` for none."""
    if value is None:
        return "-"
    if isinstance(value, (int, float)):
        return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(value))
    if isinstance(value, datetime):
        return value.astimezone().strftime("%Y-%m-%d %H:%M:%S")
    return str(value)
