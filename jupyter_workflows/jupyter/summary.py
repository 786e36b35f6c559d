"""A run in a few lines, as text and as HTML: what a saved or headless notebook keeps.

The live widget and a background run's handle are drawn by JavaScript or refreshed by the
kernel; a notebook saved, converted (nbconvert, papermill) or previewed (GitHub) keeps only the
``text/plain`` and ``text/html`` of their outputs. These are that fallback: status, tasks by
state, duration, and the last lines of each failed task. Imports nothing heavy.
"""

from __future__ import annotations

import html
import time

from ..definition.durations import format_duration
from ..execution.records import Execution, TaskRecord
from ..ui.text import shown_state

__all__ = ["FAILED_LINES", "summary_html", "summary_text"]

FAILED_LINES = 5  # last output lines shown per failed task
_FAILED_TASKS = 10  # failed tasks listed; more are counted
_COLOURS = {"succeeded": "#2e7d32", "running": "#1e88e5", "pending": "#757575"}
_BAD = "#c62828"


def summary_text(execution: Execution | None, title: str | None = None, note: str = "") -> str:
    """``etl: failed in 3.2s · 2 succeeded, 1 failed · execution <id>``, then each failed task
    with its error and last lines. ``note`` is a line under the first."""
    if execution is None:
        return f"{title or 'workflow'}: waiting for the run to start"
    lines = [_head(execution, title)]
    lines += [note] if note else []
    if execution.error:
        lines.append(f"error: {execution.error}")
    for task in _failed(execution):
        lines.append(f"✗ {task.id} {shown_state(task)}" + (f": {task.error}" if task.error else ""))
        lines += [f"    {line}" for line in task.log_tail[-FAILED_LINES:]]
    hidden = len(_failed(execution, limit=None)) - _FAILED_TASKS
    if hidden > 0:
        lines.append(f"... and {hidden} more failed task(s)")
    return "\n".join(lines)


def summary_html(execution: Execution | None, title: str | None = None, note: str = "") -> str:
    """The same summary as HTML (every value escaped), for nbconvert and notebook previews."""
    if execution is None:
        return f"<div><em>{_esc(title or 'workflow')}: waiting for the run to start</em></div>"
    status = str(execution.status)
    colour = _COLOURS.get(status, _BAD)
    parts = [
        f"<div><strong>{_esc(title or execution.workflow)}</strong> "
        f"<span style='color:{colour};font-weight:bold'>{_esc(status)}</span> "
        f"in {_esc(_took(execution))} · {_esc(_tally(execution))} · "
        f"execution <code>{_esc(execution.id)}</code></div>"
    ]
    if note:
        parts.append(f"<div><em>{_esc(note)}</em></div>")
    if execution.error:
        parts.append(f"<div style='color:{_BAD}'>error: {_esc(execution.error)}</div>")
    for task in _failed(execution):
        error = f": {_esc(task.error)}" if task.error else ""
        tail = "\n".join(task.log_tail[-FAILED_LINES:])
        pre = f"<pre style='margin:0 0 0 1.5em'>{_esc(tail)}</pre>" if tail else ""
        parts.append(
            f"<div style='color:{_BAD}'>✗ <code>{_esc(task.id)}</code> "
            f"{_esc(shown_state(task))}{error}</div>{pre}"
        )
    hidden = len(_failed(execution, limit=None)) - _FAILED_TASKS
    if hidden > 0:
        parts.append(f"<div>... and {hidden} more failed task(s)</div>")
    return f"<div class='jupyter-workflows-summary'>{''.join(parts)}</div>"


def _head(execution: Execution, title: str | None) -> str:
    return (
        f"{title or execution.workflow}: {execution.status} in {_took(execution)} · "
        f"{_tally(execution)} · execution {execution.id}"
    )


def _took(execution: Execution) -> str:
    if execution.started_at is None:
        return "-"
    return format_duration((execution.ended_at or time.time()) - execution.started_at)


def _tally(execution: Execution) -> str:
    counts: dict[str, int] = {}
    for task in task_snapshot(execution):
        counts[shown_state(task)] = counts.get(shown_state(task), 0) + 1
    return ", ".join(f"{n} {state}" for state, n in sorted(counts.items())) or "no tasks"


def _failed(execution: Execution, limit: int | None = _FAILED_TASKS) -> list[TaskRecord]:
    failed = [t for t in task_snapshot(execution) if t.status.is_failure]
    return failed if limit is None else failed[:limit]


def task_snapshot(execution: Execution) -> list[TaskRecord]:
    """The execution's tasks now. A run on another thread adds tasks (loop children) while
    we read: the copy is retried."""
    for _ in range(5):
        try:
            return list(execution.tasks.values())
        except RuntimeError:
            continue
    return []


def _esc(value: object) -> str:
    return html.escape(str(value), quote=True)
