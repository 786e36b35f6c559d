"""Terminal output: the live run table (rich), history and status tables.

Progress is plain lines when stdout is not a terminal (cron, CI, pipes) and a live rich table
on a terminal. Rich is imported only when something is drawn with it.
"""

from __future__ import annotations

import sys
import time
from typing import Any

from ..definition.durations import format_duration
from ..execution.events import (
    AttemptEnded,
    Event,
    OutputLine,
    RunEnded,
    RunStarted,
    TaskEnded,
)
from ..execution.records import Execution
from ..execution.states import State
from ..ui.text import (
    COLORS,
    ICONS,
    NullRenderer,
    PlainRenderer,
    as_tree,
    executed_notebook,
    placement_line,
    ran_elsewhere,
    ran_on,
    shown_state,
    summary_lines,
    when,
)


class LiveRenderer:
    """A rich live table of the tasks, with live_output lines printed above it."""

    def __init__(self, console: Any = None) -> None:
        from rich.console import Console
        from rich.live import Live

        self.console = console or Console()
        self.execution: Execution | None = None
        # get_renderable: the table is rebuilt on every refresh, so running times advance
        # between events too.
        self.live = Live(console=self.console, refresh_per_second=4, get_renderable=self._table)
        self.plain = PlainRenderer()
        self.started = time.monotonic()

    def __call__(self, event: Event) -> None:
        if isinstance(event, RunStarted):
            self.execution = Execution(id=event.execution_id, workflow=event.workflow)
            self.live.start()
        if self.execution is not None:
            self.execution.apply(event)
        if isinstance(event, OutputLine):
            line = self.plain.describe(event)
            if line is not None:
                self.live.console.print(line, markup=False, highlight=False)
        elif isinstance(event, AttemptEnded) and event.retry_in is not None:
            self.live.console.print(self.plain.describe(event), markup=False)
        elif isinstance(event, TaskEnded) and executed_notebook(event) is not None:
            self.live.console.print(
                f"{event.task_id}: executed notebook {executed_notebook(event)}",
                markup=False, highlight=False,
            )  # fmt: skip
        elif isinstance(event, RunStarted):
            self.plain.describe(event)  # learns which tasks stream their output
            where = placement_line(event)
            if where is not None:
                self.live.console.print(where, markup=False, highlight=False)
        if isinstance(event, RunEnded):
            self.live.refresh()
            self.live.stop()

    def _table(self) -> Any:
        from rich.table import Table

        if self.execution is None:
            return ""
        table = Table(
            title=f"{self.execution.workflow}  ·  {self.execution.id}", title_justify="left"
        )
        for column in ("", "task", "state", "attempts", "time", "detail"):
            table.add_column(column)
        clock = time.time()
        # A snapshot: rich refreshes from its own thread while events arrive on the loop's.
        for depth, task in as_tree(list(self.execution.tasks.values())):
            state = shown_state(task)
            elapsed = task.duration
            if task.status is State.RUNNING and task.started_at:
                elapsed = clock - task.started_at
            detail = task.error or "" if task.status is not State.SUCCEEDED else ""
            table.add_row(
                ICONS.get(state, "?"),
                "  " * depth + (task.name or task.id),
                f"[{COLORS.get(state, '')}]{state}[/]",
                str(len(task.attempts) or ""),
                format_duration(elapsed) if elapsed is not None else "",
                detail[:80],
            )
        return table

    def close(self, execution: Execution) -> None:
        if self.live.is_started:
            self.live.stop()
        for line in summary_lines(execution):
            self.console.print(line, markup=False, highlight=False)


def make_renderer(quiet: bool = False, timestamps: bool = False) -> Any:
    if quiet:
        return NullRenderer()
    if sys.stdout.isatty() and not timestamps:
        return LiveRenderer()
    return PlainRenderer(timestamps=timestamps)


def _console() -> Any:
    """A terminal's own width; into files and pipes, lines as long as they are (rich would
    wrap at 80), so that each table row stays one line for grep, cut and awk."""
    from rich.console import Console

    return Console() if sys.stdout.isatty() else Console(width=100_000)


def table(**options: Any) -> Any:
    """A rich table: drawn with box lines on a terminal; plain columns (a header line, then
    one line per row, two spaces between columns) into files and pipes."""
    from rich.table import Table

    if sys.stdout.isatty():
        return Table(**options)
    return Table(box=None, show_edge=False, pad_edge=False, header_style="", **options)


def show(console: Any, renderable: Any) -> None:
    """Print a table; into files and pipes without the padding rich leaves after the last
    column (trailing blanks on every line)."""
    if console.is_terminal:
        console.print(renderable)
        return
    with console.capture() as captured:
        console.print(renderable)
    lines = captured.get().splitlines()
    console.file.write("".join(line.rstrip() + "\n" for line in lines))


def print_history(rows: list[Any]) -> None:
    console = _console()
    if not rows:
        console.print("no executions recorded yet")
        return
    rows_table = table()
    # Which executor ran each run, only once some did not run locally.
    executors = any(row.executor not in (None, "local") for row in rows)
    resumed = any(row.resumed_from for row in rows)
    columns: tuple[str, ...] = ("execution", "workflow", "status", "started", "duration", "tasks")
    columns += ("executor",) if executors else ()
    for column in columns + (("resumed from",) if resumed else ()):
        rows_table.add_column(column)
    for row in rows:
        duration = row.duration_ms / 1000 if row.duration_ms is not None else None
        failed = f", {row.failed_tasks} failed" if row.failed_tasks else ""
        failed += f", {row.reused_tasks} reused" if row.reused_tasks else ""
        failed = f" ({failed[2:]})" if failed else ""
        by = f" (by {row.cancelled_by})" if row.cancelled_by else ""
        cells = [
            row.id[:8], row.workflow, f"[{COLORS.get(row.status, '')}]{row.status}[/]{by}",
            when(row.started_at), format_duration(duration), f"{row.task_count}{failed}",
        ]  # fmt: skip
        cells += [row.executor or ""] if executors else []
        rows_table.add_row(*cells, *([(row.resumed_from or "")[:8]] if resumed else []))
    show(console, rows_table)


def print_execution(execution: Execution, log_lines: int) -> None:
    from rich.markup import escape

    console = _console()
    duration = format_duration(execution.duration)
    if execution.end_estimated:
        duration = f"~{duration} (estimated: the runner died; its last sign of life)"
    where = placement_line(execution)
    by = f" (by {execution.cancelled_by})" if execution.cancelled_by else ""
    if execution.resumed_from:
        where = (where + "\n" if where else "") + f"resumed from: {execution.resumed_from}"
    console.print(
        f"[bold]{execution.workflow}[/]  {execution.id}\n"
        f"status: [{COLORS.get(str(execution.status), '')}]{execution.status}[/]{by}   "
        f"started: {when(execution.started_at)}   duration: {duration}"
        + (f"\n{escape(where)}" if where else "")
        + (f"\nerror: {execution.error}" if execution.error else ""),
        markup=True,
        highlight=False,
    )
    tasks = as_tree(execution.tasks.values())
    # Where each task ran, only when some ran on a cluster or another machine: a local run's
    # table stays as it was.
    placed = any(ran_elsewhere(task) for _, task in tasks)
    columns = ["task", "type", "status", "attempts", "duration", "exit", "error"]
    if placed:
        columns.insert(4, "where")
    tasks_table = table()
    for column in columns:
        tasks_table.add_column(column)
    for depth, task in tasks:
        state = shown_state(task)
        exit_code = "" if task.exit_code is None else str(task.exit_code)
        detail = (task.error or "")[:80]
        if task.reused:
            detail = f"reused from {(task.reused_from or '')[:8]}"
        cells = [
            "  " * depth + task.id, task.type, f"[{COLORS.get(state, '')}]{state}[/]",
            str(len(task.attempts)), format_duration(task.duration), exit_code, detail,
        ]  # fmt: skip
        if placed:
            cells.insert(4, escape(ran_on(task)))
        tasks_table.add_row(*cells)
    show(console, tasks_table)
    if log_lines:
        for task in execution.tasks.values():
            if task.log_tail:
                console.print(f"[bold]--- {task.id}: last {len(task.log_tail)} line(s) ---[/]")
                for line in task.log_tail:
                    console.print(f"  {line}", markup=False, highlight=False)
