"""``workflow monitor``: the health report as tables or JSON, or the charts written to a file.

Only click is imported here: the store, rich and altair load inside the command, so
registering it on the ``workflow`` group costs the other commands nothing.
"""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from .common import EXIT_FAILED, friendly_errors, json_text, since_option

if TYPE_CHECKING:
    from ..store import ExecutionStore

CHART_SUFFIXES = (".png", ".svg", ".html")


def _chart_path(_ctx: click.Context, _param: click.Parameter, value: Path | None) -> Path | None:
    if value is None:
        return None
    if value.suffix.lower() not in CHART_SUFFIXES:
        raise click.BadParameter(f"'{value}': the file name must end in .png, .svg or .html")
    if not value.parent.is_dir():
        raise click.BadParameter(f"'{value}': directory '{value.parent}' does not exist")
    return value


@click.command("monitor")
@click.option("--workflow", "workflow_name", default=None, help="Only this workflow.")
@since_option
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option(
    "--chart",
    type=click.Path(dir_okay=False, path_type=Path),
    callback=_chart_path,
    metavar="FILE",
    help="Write the charts to FILE (.png, .svg or .html) instead of the report.",
)
@click.option("--live", is_flag=True, help="A view of running and recent runs that refreshes "
              "until Ctrl-C.")  # fmt: skip
@click.option("--interval", type=click.FloatRange(min=0.1), default=2.0, show_default=True,
              help="Seconds between refreshes of --live.")  # fmt: skip
@click.option("--frames", type=click.IntRange(min=1), default=None, hidden=True,
              help="Stop --live after this many refreshes (for scripts and tests).")  # fmt: skip
@click.pass_obj
@friendly_errors
def monitor(
    root: Path | None,
    workflow_name: str | None,
    since: datetime | None,
    as_json: bool,
    chart: Path | None,
    live: bool,
    interval: float,
    frames: int | None,
) -> None:
    """Health of recorded runs: success rates and durations per workflow and task."""
    from ..store.frames import open_store

    store = open_store(project_root=root)  # None: the project the current directory is in
    if live:
        if as_json or chart is not None:
            raise click.UsageError("--live cannot be combined with --json or --chart")
        from .live import run_live

        run_live(store, workflow=workflow_name, since=since, interval=interval, frames=frames)
        return
    has_runs = bool(store.history(limit=1, workflow=workflow_name, since=since))
    if chart is not None:
        if not has_runs:
            click.echo(f"{_no_runs(workflow_name, since)}: no chart written", err=True)
            sys.exit(EXIT_FAILED)
        _write_chart(store, chart, workflow_name, since)
        return
    from ..monitor.health import WorkflowMonitor

    report = WorkflowMonitor(store).health_report(workflow_name, since)
    if as_json:
        click.echo(json_text(report))
    elif not has_runs:
        click.echo(_no_runs(workflow_name, since))
    else:
        print_report(report, workflow_name, since)


def _write_chart(
    store: ExecutionStore, path: Path, workflow: str | None, since: datetime | None
) -> None:
    from ..monitor.charts import overview, save_chart

    try:
        chart = overview(store, workflow=workflow, since=since)
    except ValueError as exc:  # runs, but none finished yet: nothing to draw
        click.echo(f"{exc}: no chart written", err=True)
        sys.exit(EXIT_FAILED)
    save_chart(chart, path)
    click.echo(f"wrote {path}")


def _no_runs(workflow: str | None, since: datetime | None) -> str:
    what = f"no runs of '{workflow}'" if workflow else "no runs"
    return what + (f" since {_when(since)}" if since else " recorded yet")


def print_report(report: dict[str, Any], workflow: str | None, since: datetime | None) -> None:
    """The report as three rich tables: overall, per workflow, per task."""
    from .render import COLORS, _console, show, table

    console = _console()
    overall = report["overall"]
    scope = (f" of '{workflow}'" if workflow else "") + (f" since {_when(since)}" if since else "")
    console.print(
        f"[bold]{overall['runs']} run(s){scope}[/]: {overall['succeeded']} succeeded, "
        f"{overall['failed']} failed, success rate {_rate(overall['success_rate'])}; "
        f"duration p50 {_ms(overall['p50_ms'])}, p95 {_ms(overall['p95_ms'])}"
    )
    runs = table(title="workflows", title_justify="left")
    for column in ("workflow", "runs", "ok", "failed", "success", "avg", "p50", "p95", "last run"):
        runs.add_column(column, justify="left" if column in ("workflow", "last run") else "right")
    for row in report["workflows"]:
        status = row["last_status"]
        last = f"{_when(row['last_started_at'])} [{COLORS.get(status, '')}]{status}[/]"
        runs.add_row(
            row["workflow"], str(row["runs"]), str(row["succeeded"]), str(row["failed"]),
            _rate(row["success_rate"]), _ms(row["avg_ms"]), _ms(row["p50_ms"]),
            _ms(row["p95_ms"]), last,
        )  # fmt: skip
    show(console, runs)
    tasks = table(title="tasks", title_justify="left")
    left = ("workflow", "task", "most common failure")
    for column in ("workflow", "task", "runs", "failures", "retries", "avg", "p50", "p95", left[2]):
        tasks.add_column(column, justify="left" if column in left else "right")
    for row in report["tasks"]:
        failures = f"[red]{row['failures']}[/]" if row["failures"] else "0"
        tasks.add_row(
            row["workflow"], row["task_id"], str(row["runs"]), failures, str(row["retries"]),
            _ms(row["avg_ms"]), _ms(row["p50_ms"]), _ms(row["p95_ms"]),
            (row.get("most_common_failure") or "")[:60],
        )  # fmt: skip
    show(console, tasks)
    if report.get("alerts"):
        from .live import alerts_table

        show(console, alerts_table(report["alerts"][:10]))


def _rate(value: float | None) -> str:
    if value is None:
        return "-"
    color = "green" if value >= 0.9 else "yellow" if value >= 0.5 else "red"
    return f"[{color}]{value:.0%}[/]"


def _ms(value: float | None) -> str:
    from ..definition.durations import format_duration

    return format_duration(None if value is None else value / 1000)


def _when(value: datetime | None) -> str:
    from ..ui.text import when

    return when(value)
