"""``workflow monitor --live``: a terminal view that refreshes until Ctrl-C.

Each refresh takes one snapshot of the store (one lock, one open of the index), so the view
reads while runners, daemons and kernels keep writing: runs in progress with their tasks,
the last finished runs, and the alerts sent (or that failed to send) recently.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ..definition.durations import format_duration
from ..execution.records import Execution
from ..ui.text import COLORS, ICONS, as_tree
from ..ui.text import when as _when

if TYPE_CHECKING:
    from ..store import ExecutionStore
    from ..store.models import ExecutionSummary

RUNNING_SHOWN = 5
RECENT_SHOWN = 10
ALERTS_SHOWN = 5


def run_live(
    store: ExecutionStore,
    *,
    workflow: str | None,
    since: datetime | None,
    interval: float,
    frames: int | None = None,
    console: Any = None,
) -> None:
    """Redraw every ``interval`` seconds until Ctrl-C (or after ``frames`` redraws)."""
    from rich.live import Live

    from .render import _console

    console = console or _console()
    drawn = 0
    with Live(console=console, auto_refresh=False, transient=False) as live:
        try:
            while frames is None or drawn < frames:
                live.update(frame(store, workflow=workflow, since=since), refresh=True)
                drawn += 1
                if frames is None or drawn < frames:
                    time.sleep(interval)
        except KeyboardInterrupt:
            pass  # Ctrl-C is how a user leaves a live view: not an error


def frame(store: ExecutionStore, *, workflow: str | None, since: datetime | None) -> Any:
    """One screen: a renderable of what runs, what ran, and recent alerts."""
    from rich.console import Group
    from rich.text import Text

    from ..monitor.health import WorkflowMonitor

    with store.snapshot() as view:
        running_rows = view.history(limit=RUNNING_SHOWN, workflow=workflow, status="running")
        running = [view.get_execution(row.id) for row in running_rows]
        running_count = view.count_executions(workflow=workflow or None, status="running")
        recent = [
            row
            for row in view.history(
                limit=RECENT_SHOWN + len(running_rows), workflow=workflow, since=since
            )  # fmt: skip
            if row.status != "running"
        ][:RECENT_SHOWN]
    alerts = WorkflowMonitor(store).alerts(workflow, since=since, limit=ALERTS_SHOWN)
    title = Text.assemble(
        ("jupyter-workflows monitor", "bold"),
        f"  {datetime.now():%H:%M:%S}  ({running_count} running; Ctrl-C to stop)",
    )
    parts: list[Any] = [title, running_table(running), recent_table(recent)]
    if alerts:
        parts.append(alerts_table(alerts))
    return Group(*parts)


def running_table(executions: list[Execution]) -> Any:
    from rich.table import Table

    table = Table(title="running", title_justify="left", expand=False)
    for column in ("execution", "workflow / task", "state", "elapsed", "progress"):
        table.add_column(column)
    now = time.time()
    if not executions:
        table.add_row("", "[dim]nothing is running[/]", "", "", "")
    for execution in executions:
        done = sum(1 for t in execution.tasks.values() if t.status.is_terminal)
        elapsed = now - execution.started_at if execution.started_at else None
        table.add_row(
            execution.id[:8], f"[bold]{execution.workflow}[/]", _state(str(execution.status)),
            format_duration(elapsed), f"{done}/{len(execution.tasks)} tasks",
        )  # fmt: skip
        for depth, task in as_tree(execution.tasks.values()):
            if task.status.value == "pending":
                continue
            spent = task.duration
            if spent is None and task.started_at is not None:
                spent = now - task.started_at
            retry = f" (attempt {len(task.attempts)})" if len(task.attempts) > 1 else ""
            table.add_row(
                "", "  " * (depth + 1) + task.id, _state(str(task.status)) + retry,
                format_duration(spent), "",
            )  # fmt: skip
    return table


def recent_table(rows: list[ExecutionSummary]) -> Any:
    from rich.table import Table

    table = Table(title="recent runs", title_justify="left")
    for column in ("execution", "workflow", "status", "started", "duration", "trigger"):
        table.add_column(column)
    for row in rows:
        duration = None if row.duration_ms is None else row.duration_ms / 1000
        table.add_row(
            row.id[:8], row.workflow, _state(row.status), _when(row.started_at),
            format_duration(duration), row.trigger or "",
        )  # fmt: skip
    return table


def alerts_table(records: list[dict[str, Any]]) -> Any:
    """Recent alerts, failed deliveries in red with the channel's error."""
    from .render import table as new_table

    table = new_table(title="recent alerts", title_justify="left")
    for column in ("when", "rule", "workflow", "execution", "delivery"):
        table.add_column(column)
    for record in records:
        table.add_row(
            datetime.fromtimestamp(record.get("at") or 0).strftime("%Y-%m-%d %H:%M:%S"),
            str(record.get("rule") or ""), str(record.get("workflow") or ""),
            str(record.get("execution_id") or "")[:8], delivery_text(record),
        )  # fmt: skip
    return table


def delivery_text(record: dict[str, Any]) -> str:
    """ "sent", "pending" with the channels waiting, or which channels failed and why, from
    one alert record (``recent_alerts``)."""
    if record.get("ok"):
        return "[green]sent[/]"
    if record.get("status") == "pending":
        waiting = [
            f"{c.get('channel')}" + (f" ({c.get('error')})" if c.get("error") else "")
            for c in record.get("channels") or []
            if c.get("ok") is None
        ]
        return "[yellow]pending[/] " + "; ".join(waiting)
    failures = [
        f"{c.get('channel')}: {c.get('error')}"
        for c in record.get("channels") or []
        if not c.get("ok")
    ]
    if not failures and record.get("error"):
        failures = [str(record["error"])]
    return "[red]failed[/] " + "; ".join(failures)


def _state(status: str) -> str:
    return f"[{COLORS.get(status, '')}]{ICONS.get(status, '')} {status}[/]"
