"""Plain-text views of a live run, for where no widget can be drawn.

``TextLines`` prints compact progress lines (terminal IPython, plain Python), worded like the
CLI's plain renderer. ``TextTable`` keeps one text table up to date in a notebook output
(``display(..., display_id=True)`` then ``update``), for front-ends without widgets. Neither
imports anywidget or ipywidgets; ``TextTable`` imports IPython only when shown.
"""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

from ..definition.durations import format_duration
from ..execution.events import Event, RunEnded, RunStarted, TaskEnded, TaskProgress
from ..execution.records import Execution, TaskRecord
from ..execution.states import State
from ..ui.text import (
    ICONS,
    PlainRenderer,
    as_tree,
    placement_line,
    ran_elsewhere,
    ran_on,
    shown_state,
    summary_lines,
)

TABLE_ROWS = 20  # tasks listed in the text table; running and failed ones come first
TABLE_LOG_LINES = 10


class TextLines:
    """One line per event worth telling, numbered as tasks end, and a summary at the end."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream
        self._plain = PlainRenderer(stream)  # used for its wording (`describe`) only
        self._ended = 0
        self._steps: dict[str, Any] = {}

    def _print(self, line: str) -> None:
        # sys.stdout looked up each time: IPython and pytest swap it after we were made.
        print(line, file=self.stream or sys.stdout, flush=True)

    def event(self, event: Event, execution: Execution) -> None:
        if isinstance(event, TaskProgress):
            label = event.label or _step(event.step, event.total)
            if self._steps.get(event.task_id) != label:
                self._steps[event.task_id] = label
                self._print(f"  {event.task_id}: {label}")
            return
        if isinstance(event, RunStarted):
            self._ended = 0
        line = self._plain.describe(event)
        if isinstance(event, TaskEnded) and line is not None:
            self._ended += 1
            total = max(len(execution.tasks), self._ended)
            line = f"[{self._ended:>{len(str(total))}}/{total}] {line}"
        if line is not None:
            self._print(line)
        if isinstance(event, RunEnded):
            for summary in summary_lines(execution):
                self._print(summary)

    def show(self, execution: Execution | None, title: str | None) -> None:
        """Print where the run is now; before it starts there is nothing to say (its lines
        print as events arrive)."""
        if execution is not None:
            self._print(status_line(execution, title))


class TextTable:
    """A text table of the run kept current in one notebook output."""

    def __init__(self, title: str | None = None, expected: float | None = None) -> None:
        self.title = title
        self.expected = expected
        self.handle: Any = None

    def _bundle(self, execution: Execution | None, log_task: str, tail: list[str]) -> Any:
        text = render_table(execution, log_task, tail, title=self.title, expected=self.expected)
        return {"text/plain": text}

    def show(self, execution: Execution | None, log_task: str, tail: list[str]) -> None:
        from IPython.display import display

        self.handle = display(self._bundle(execution, log_task, tail), raw=True, display_id=True)

    def update(self, execution: Execution | None, log_task: str, tail: list[str]) -> None:
        if self.handle is not None:  # nothing to update before display()
            self.handle.update(self._bundle(execution, log_task, tail), raw=True)


def status_line(execution: Execution | None, title: str | None = None) -> str:
    """`etl · running · 3.2s · 12 succeeded, 1 failed, 7 pending · execution <id>`."""
    if execution is None:
        return f"{title + ': ' if title else ''}waiting for the run to start"
    counts: dict[str, int] = {}
    for task in execution.tasks.values():
        counts[shown_state(task)] = counts.get(shown_state(task), 0) + 1
    tally = ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))
    end = execution.ended_at or time.time()
    took = format_duration(end - execution.started_at) if execution.started_at else "-"
    head = title or execution.workflow
    return (
        f"{head} · {execution.status} · {took} · {tally or 'no tasks'} · execution {execution.id}"
    )


def progress_line(execution: Execution, expected: float | None, now: float | None = None) -> str:
    """``3/7 tasks done · about 40s left``: the ETA (while it runs, when ``expected`` is
    known) is the usual run's length less the time elapsed; the widget says the same."""
    tasks = list(execution.tasks.values())
    done = sum(t.status not in (State.PENDING, State.RUNNING) for t in tasks)
    line = f"{done}/{len(tasks)} tasks done"
    if execution.status is State.RUNNING and expected and execution.started_at is not None:
        elapsed = (now or time.time()) - execution.started_at
        if elapsed < expected:
            line += f" · about {format_duration(expected - elapsed)} left"
        else:
            line += f" · longer than the usual {format_duration(expected)}"
    return line


def render_table(
    execution: Execution | None,
    log_task: str = "",
    tail: list[str] | None = None,
    *,
    title: str | None = None,
    rows: int = TABLE_ROWS,
    expected: float | None = None,
) -> str:
    """The run as text: a status line, the progress line (tasks done, ETA from ``expected``,
    the seconds a run usually takes), the cluster when not local, the tasks that matter most,
    the shown task's output (and where it ran, when not on this machine)."""
    lines = [status_line(execution, title)]
    if execution is None:
        return lines[0]
    lines.append(progress_line(execution, expected))
    where = placement_line(execution)
    if where:
        lines.append(where)
    ordered = as_tree(execution.tasks.values())
    urgent = {t.id for _, t in ordered if t.status is State.RUNNING or t.status.is_failure}
    room = max(0, rows - len(urgent))
    shown = []
    for depth, task in ordered:
        if task.id in urgent or room > 0:
            shown.append((depth, task))
            room -= task.id not in urgent
    width = max((len(t.id) + 2 * d for d, t in shown), default=0)
    now = time.time()
    lines.extend(_row(depth, task, width, now) for depth, task in shown)
    if len(shown) < len(ordered):
        lines.append(f"  ... {len(ordered) - len(shown)} more task(s)")
    if log_task:
        record = execution.tasks.get(log_task)
        on = f" (on {ran_on(record)})" if record is not None and ran_elsewhere(record) else ""
        lines.append(f"--- {log_task}: last output{on} ---")
        lines.extend(f"  {line}" for line in (tail or [])[-TABLE_LOG_LINES:])
        if record is not None and record.error and record.status is not State.SUCCEEDED:
            lines.append(f"  error: {record.error}")
    return "\n".join(lines)


def _row(depth: int, task: TaskRecord, width: int, now: float) -> str:
    state = shown_state(task)
    elapsed = task.duration
    if task.status is State.RUNNING and task.started_at is not None:
        elapsed = now - task.started_at
    notes = []
    if len(task.attempts) > 1:
        notes.append(f"attempt {len(task.attempts)}")
    if task.progress and task.status is State.RUNNING:
        notes.append(_step(task.progress.get("step"), task.progress.get("total")))
    if task.error and task.status is not State.SUCCEEDED:
        notes.append(task.error[:80])
    if task.reused_from:
        notes.append(f"from {task.reused_from[:8]}")
    name = ("  " * depth + task.id).ljust(width)
    took = format_duration(elapsed) if elapsed is not None else ""
    return f"  {ICONS.get(state, '?')} {name}  {state:<9} {took:>7}  {'  '.join(notes)}".rstrip()


def _step(step: Any, total: Any) -> str:
    return f"cell {step}/{total}" if total else f"cell {step}"
