"""Rich displays for what the magics return: HTML tables in a notebook, text in a terminal.

Each wrapper keeps the object it shows (``.execution``, ``.report``, ``.rows``) and hands
unknown attributes on to it, so ``_.status`` or ``_.ok`` work in the next cell. Everything that
comes from a workflow or a run (names, errors, log lines) is HTML-escaped.
"""

from __future__ import annotations

import html
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, is_dataclass
from typing import Any

from ..definition.durations import format_duration
from ..execution.records import Execution, TaskRecord
from ..execution.states import State
from ..ui.text import as_tree, placement_line, ran_elsewhere, ran_on, shown_state, when
from .summary import task_snapshot

__all__ = ["STATE_COLORS", "ExecutionView", "HealthView", "HistoryView", "ReportView"]

# One colour per state, shared with the live widget's palette in spirit: green ends well, red
# and orange end badly, grey never ran.
STATE_COLORS = {
    "pending": "#9e9e9e", "running": "#1e88e5", "succeeded": "#2e7d32", "failed": "#c62828",
    "timed_out": "#e65100", "cancelled": "#f9a825", "skipped": "#757575", "crashed": "#6a1b9a",
    "resumed": "#558b2f", "cached": "#00838f",
}  # fmt: skip

_TABLE_STYLE = "border-collapse:collapse;font-size:0.9em"
_CELL_STYLE = "padding:2px 8px;text-align:left;vertical-align:top"


class _RichView:
    """Text for terminals (``repr`` and IPython's pretty printer), HTML for notebooks.

    Public attributes it lacks come from the wrapped object named by ``_wrapped``."""

    _wrapped = ""

    def __getattr__(self, name: str) -> Any:
        target = self.__dict__.get(self._wrapped) if self._wrapped else None
        if target is None or name.startswith("_"):
            raise AttributeError(name)
        return getattr(target, name)

    def __dir__(self) -> list[str]:
        target = self.__dict__.get(self._wrapped) if self._wrapped else None
        extra = [n for n in dir(target) if not n.startswith("_")] if target is not None else []
        return sorted({*super().__dir__(), *extra})

    def text(self) -> str:
        raise NotImplementedError

    def _repr_html_(self) -> str:
        raise NotImplementedError

    def __repr__(self) -> str:
        return self.text()

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(self.text())


class ExecutionView(_RichView):
    """One execution: status, duration, a row per task (children under their parent), attempts
    and the last lines of each task's output. ``note`` is a line shown under the header. A run
    whose tasks ran on a cluster (or another machine) also says where: the cluster and its
    dashboard under the header, and a ``where`` column."""

    _wrapped = "execution"

    def __init__(self, execution: Execution, *, note: str | None = None):
        self.execution = execution
        self.note = note

    def _rows(self) -> list[tuple[int, TaskRecord]]:
        return as_tree(task_snapshot(self.execution))

    def _placed(self, rows: list[tuple[int, TaskRecord]]) -> bool:
        return any(ran_elsewhere(task) for _, task in rows)

    def _header(self) -> tuple[str, str]:
        ex = self.execution
        duration = _elapsed(ex.started_at, ex.ended_at, ex.status)
        started = f"started {when(ex.started_at)}" if ex.started_at else "not started yet"
        return f"{format_duration(duration)}", started

    def text(self) -> str:
        ex = self.execution
        took, when = self._header()
        lines = [f"workflow '{ex.workflow}'  execution {ex.id}", f"{ex.status} in {took}, {when}"]
        lines += [f"error: {ex.error}"] if ex.error else []
        where = placement_line(ex)
        lines += [where] if where else []
        lines += [f"resumed from execution {ex.resumed_from}"] if ex.resumed_from else []
        lines += [self.note] if self.note else []
        tasks = self._rows()
        placed = self._placed(tasks)
        rows = [_task_cells(task, depth, placed) for depth, task in tasks]
        lines.append(_text_table(_task_columns(placed), rows))
        for _, task in self._rows():
            if task.log_tail:
                lines.append(f"--- {task.id}: last {len(task.log_tail)} line(s) ---")
                lines += [f"  {line}" for line in task.log_tail]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        ex = self.execution
        took, when = self._header()
        head = (
            f"<div><strong>{_esc(ex.workflow)}</strong> <code>{_esc(ex.id)}</code> "
            f"{_badge(str(ex.status))} in {_esc(took)}, {_esc(when)}</div>"
        )
        if ex.error:
            head += f"<div style='color:{STATE_COLORS['failed']}'>error: {_esc(ex.error)}</div>"
        head += _placement_html(ex)
        if ex.resumed_from:
            head += f"<div>resumed from execution <code>{_esc(ex.resumed_from)}</code></div>"
        if self.note:
            head += f"<div><em>{_esc(self.note)}</em></div>"
        tasks = self._rows()
        placed = self._placed(tasks)
        body = [_task_html(task, depth, placed) for depth, task in tasks]
        logs = "".join(_log_html(task) for _, task in tasks if task.log_tail)
        table = _html_table(_task_columns(placed), body)
        return f"<div class='jupyter-workflows-execution'>{head}{table}{logs}</div>"


_TASK_COLUMNS = ("task", "type", "status", "attempts", "duration", "exit", "detail")


def _task_columns(placed: bool) -> tuple[str, ...]:
    """The task table's headings; ``where`` (after ``attempts``) when tasks ran elsewhere."""
    return (*_TASK_COLUMNS[:4], "where", *_TASK_COLUMNS[4:]) if placed else _TASK_COLUMNS


def _task_cells(task: TaskRecord, depth: int, placed: bool) -> list[str]:
    exit_code = "" if task.exit_code is None else str(task.exit_code)
    cells = [
        "  " * depth + _label(task), task.type, shown_state(task), _attempts(task),
        format_duration(_elapsed(task.started_at, task.ended_at, task.status)), exit_code,
        _detail(task)[:100],
    ]  # fmt: skip
    if placed:
        cells.insert(4, ran_on(task))
    return cells


def _placement_html(execution: Execution) -> str:
    """The cluster the run's tasks ran on, with a link to its dashboard (an http(s) address
    only); nothing for a local run."""
    where = placement_line(execution)
    if where is None:
        return ""
    line = f"tasks run on {_esc(execution.executor)}"
    if execution.cluster:
        line += f" at <code>{_esc(execution.cluster)}</code>"
    dashboard = execution.dashboard or ""
    if dashboard.lower().startswith(("http://", "https://")):
        line += (
            f" (<a href='{_esc(dashboard)}' target='_blank' rel='noopener noreferrer'>"
            "dashboard</a>)"
        )
    return f"<div class='jupyter-workflows-placement'>{line}</div>"


def _task_html(task: TaskRecord, depth: int, placed: bool) -> list[str]:
    cells = [_esc(c) for c in _task_cells(task, depth, placed)]
    cells[0] = f"<span style='padding-left:{1.2 * depth:.1f}em'>{_esc(_label(task))}</span>"
    cells[2] = _badge(shown_state(task))
    return cells


def _label(task: TaskRecord) -> str:
    return task.id if not task.name or task.name == task.id else f"{task.id} ({task.name})"


def _attempts(task: TaskRecord) -> str:
    if len(task.attempts) <= 1:
        return str(len(task.attempts))
    return f"{len(task.attempts)}: " + ", ".join(str(a.status) for a in task.attempts)


def _detail(task: TaskRecord) -> str:
    if task.reused_from:
        return f"reused from execution {task.reused_from}"
    if task.error and task.status is not State.SUCCEEDED:
        return task.error
    if task.progress and task.status is State.RUNNING:
        progress = task.progress
        total = f"/{progress['total']}" if progress.get("total") else ""
        return progress.get("label") or f"step {progress['step']}{total}"
    return ""


def _log_html(task: TaskRecord) -> str:
    lines = "\n".join(task.log_tail)
    return (
        f"<details><summary>{_esc(task.id)}: last {len(task.log_tail)} line(s)</summary>"
        f"<pre style='margin:0'>{_esc(lines)}</pre></details>"
    )


class _RowsView(_RichView):
    """A table of rows (dicts) with named columns, also available as a DataFrame.

    Subclasses give ``_shown`` (headings), ``_cells()`` (text per row) and may style a row's
    HTML cells in ``_decorate``."""

    columns: tuple[str, ...] = ()
    _shown: tuple[str, ...] = ()

    def _cells(self) -> list[list[str]]:
        raise NotImplementedError

    def _decorate(self, row: dict[str, Any], cells: list[str], html: list[str]) -> None:
        pass

    def text(self) -> str:
        if not self.rows:
            return "no executions recorded yet"
        return _text_table(self._shown, self._cells())

    def _repr_html_(self) -> str:
        if not self.rows:
            return "<em>no executions recorded yet</em>"
        body = []
        for row, cells in zip(self.rows, self._cells(), strict=True):
            html = [_esc(c) for c in cells]
            self._decorate(row, cells, html)
            body.append(html)
        return _html_table(self._shown, body)

    def __init__(self, rows: Iterable[Any]):
        self.rows: list[dict[str, Any]] = [_as_dict(row) for row in rows]

    def __len__(self) -> int:
        return len(self.rows)

    def to_dataframe(self) -> Any:
        return _dataframe(self.rows, self.columns)


class HistoryView(_RowsView):
    """Executions, newest first. ``.rows`` is a list of dicts; ``.to_dataframe()`` needs pandas."""

    columns = (
        "id", "workflow", "status", "started_at", "ended_at", "duration_ms", "trigger",
        "task_count", "failed_tasks",
    )  # fmt: skip

    def _cells(self) -> list[list[str]]:
        return [
            [
                str(row["id"])[:8], str(row["workflow"]), str(row["status"]),
                when(row.get("started_at")), format_duration(_seconds(row.get("duration_ms"))),
                _tasks_cell(row),
            ]
            for row in self.rows
        ]  # fmt: skip

    _shown = ("execution", "workflow", "status", "started", "duration", "tasks")

    def _decorate(self, row: dict[str, Any], cells: list[str], html: list[str]) -> None:
        html[0] = f"<code title='{_esc(row['id'])}'>{_esc(cells[0])}</code>"
        html[2] = _badge(cells[2])


def _tasks_cell(row: dict[str, Any]) -> str:
    failed = row.get("failed_tasks") or 0
    return f"{row.get('task_count', 0)}" + (f" ({failed} failed)" if failed else "")


class HealthView(_RowsView):
    """Per-workflow health (runs, success rate, durations, last run) from the store's metrics."""

    columns = (
        "workflow", "runs", "succeeded", "failed", "success_rate", "avg_ms", "p50_ms", "p95_ms",
        "last_started_at", "last_status",
    )  # fmt: skip
    _shown = ("workflow", "runs", "ok", "failed", "success", "p50", "p95", "last run", "last")

    def _cells(self) -> list[list[str]]:
        return [
            [
                str(row["workflow"]), str(row["runs"]), str(row["succeeded"]),
                str(row["failed"]), _rate(row.get("success_rate")),
                format_duration(_seconds(row.get("p50_ms"))),
                format_duration(_seconds(row.get("p95_ms"))),
                when(row.get("last_started_at")), str(row.get("last_status") or "-"),
            ]
            for row in self.rows
        ]  # fmt: skip

    def _decorate(self, row: dict[str, Any], cells: list[str], html: list[str]) -> None:
        colour = _rate_colour(row.get("success_rate"))
        html[4] = f"<span style='color:{colour}'>{_esc(cells[4])}</span>"
        html[8] = _badge(cells[8]) if row.get("last_status") else "-"


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.0f}%"


def _rate_colour(value: float | None) -> str:
    if value is None:
        return STATE_COLORS["pending"]
    if value >= 0.9:
        return STATE_COLORS["succeeded"]
    return STATE_COLORS["timed_out"] if value >= 0.5 else STATE_COLORS["failed"]


class ReportView(_RichView):
    """A validation report: valid, or every problem with its line, task and field."""

    _shown = ("line", "severity", "task", "field", "message")

    _wrapped = "report"

    def __init__(self, report: Any):
        self.report = report

    def _summary(self) -> str:
        report = self.report
        if report.ok:
            note = f" ({len(report.warnings)} warning(s))" if report.warnings else ""
            return f"{report.source}: valid{note}"
        return f"{report.source}: {len(report.errors)} error(s), {len(report.warnings)} warning(s)"

    def _cells(self) -> list[list[str]]:
        return [
            [
                _where(p.line, p.column), p.severity, p.task_id or "", p.field or "", p.message,
            ]
            for p in self.report.problems
        ]  # fmt: skip

    def text(self) -> str:
        lines = [self._summary()]
        lines += [f"{p.severity}: {p}" for p in self.report.problems]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        colour = STATE_COLORS["succeeded" if self.report.ok else "failed"]
        head = f"<div style='color:{colour}'><strong>{_esc(self._summary())}</strong></div>"
        if not self.report.problems:
            return head
        body = [[_esc(c) for c in cells] for cells in self._cells()]
        return head + _html_table(self._shown, body)


def _where(line: int | None, column: int | None) -> str:
    if line is None:
        return ""
    return f"{line}:{column}" if column is not None else str(line)


# -- shared helpers ---------------------------------------------------------------------------


def _esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def _badge(state: str) -> str:
    colour = STATE_COLORS.get(state, "#616161")
    return (
        f"<span style='background:{colour};color:white;border-radius:3px;padding:0 5px'>"
        f"{_esc(state)}</span>"
    )


def _html_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A table from cells that are already HTML (escaped by the caller)."""
    head = "".join(f"<th style='{_CELL_STYLE}'>{_esc(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f"<td style='{_CELL_STYLE}'>{cell}</td>" for cell in row) + "</tr>"
        for row in rows
    )
    return (
        f"<table style='{_TABLE_STYLE}'><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    )


def _text_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]
    lines = [headers, *rows]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip()
        for line in lines
    )


def _elapsed(started: float | None, ended: float | None, status: State) -> float | None:
    if started is None:
        return None
    if ended is None:
        return time.time() - started if status is State.RUNNING else None
    return ended - started


def _seconds(milliseconds: float | None) -> float | None:
    return None if milliseconds is None else milliseconds / 1000


def _as_dict(row: Any) -> dict[str, Any]:
    if isinstance(row, dict):
        return dict(row)
    if is_dataclass(row) and not isinstance(row, type):
        return asdict(row)
    raise TypeError(f"expected a dict or a dataclass row, got {type(row).__name__}")


def _dataframe(rows: list[dict[str, Any]], columns: Sequence[str]) -> Any:
    try:
        import pandas as pd
    except ImportError:
        raise ImportError(
            "to_dataframe() needs pandas (pip install pandas); .rows has the same data as dicts"
        ) from None
    extra = [c for row in rows[:1] for c in row if c not in columns]
    return pd.DataFrame(rows, columns=[*columns, *extra])
