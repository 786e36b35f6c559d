"""The ``workflow`` command (also ``jupyter workflows``).

Exit codes: 0 success, 1 a run failed (or validation found errors), 2 bad input (invalid
definition, unknown file, bad option, a store that cannot be used), 3 a write to the store
failed mid-run (disk full: the run was stopped), 130 interrupted. Heavy modules are imported
inside the commands that need them so that ``workflow validate`` starts fast.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ..ui.options import parse_env_pairs
from .common import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_STORE,
    EXIT_USAGE,
    executor_options,
    friendly_errors,
    print_problems,
    skip_pydantic_plugin_lookup,
)
from .common import fail as _fail
from .common import warn as _warn

if TYPE_CHECKING:
    from ..definition.locate import Finding
    from ..store import ExecutionStore


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--project-root",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="WORKFLOW_PROJECT_ROOT",
    default=None,
    help="Where relative paths in workflows resolve and history is kept (default: the nearest "
    "folder at or above the current one with workflows/config.json, .workflow-config.json or "
    "workflows/definitions/, else the current one). File arguments are relative to the "
    "current directory.",
)
@click.version_option(package_name="jupyter-workflows")
@click.pass_context
def main(ctx: click.Context, project_root: Path | None) -> None:
    """Load, validate and run workflows; query their history."""
    from ..errors import ConfigError
    from ..project import project_root as find_project_root

    skip_pydantic_plugin_lookup()
    try:
        ctx.obj = find_project_root(project_root)
    except ConfigError as exc:
        _fail(str(exc))


@main.command()
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--env", "env_pairs", multiple=True, help="K=V[,K2=V2]: values for ${env.K}.")
@click.option("--max-parallel", type=click.IntRange(min=1), default=None)
@click.option("--dry-run", is_flag=True, help="Print the plan without running anything.")
@click.option("--json", "as_json", is_flag=True, help="Print the execution as JSON.")
@click.option("--no-alerts", is_flag=True, help="Send no alerts for this run.")
@executor_options
@click.pass_obj
@friendly_errors
def run(
    root: Path,
    file: Path,
    env_pairs: tuple[str, ...],
    max_parallel: int | None,
    dry_run: bool,
    as_json: bool,
    no_alerts: bool,
    executor: str | None,
    cluster: str | None,
) -> None:
    """Run a workflow file."""
    from ..engine.orchestrator import WorkflowOrchestrator
    from ..errors import StoreWriteFailed
    from ..execution.states import State

    try:
        env = parse_env_pairs(env_pairs)
    except ValueError as exc:
        _fail(str(exc))
    orchestrator = WorkflowOrchestrator(root, executor=executor, cluster=cluster)
    if dry_run:
        from .plan import print_plan

        workflow, _ = orchestrator.load(file)
        print_plan(workflow, env)
        return
    from ..tasks.custody import dedicate
    from .render import make_renderer

    renderer = make_renderer(quiet=as_json)
    orchestrator.sinks.append(renderer)
    workflow, path = orchestrator.load(file)
    # Before alerts (which keep their records in the store) and before any task: a store
    # that cannot record the run stops it here, with what to do (exit code 2).
    orchestrator.store.check_writable()
    alerts = None
    if not no_alerts:
        from ..monitor.alerting import attach_alerts

        alerts = attach_alerts(orchestrator, defer=True, warn=_warn, env={**os.environ, **env})
        if alerts is not None:
            alerts.add_workflow(workflow)  # its notifications, without loading it again
    # This process runs one workflow and nothing else: all it starts is born in a cgroup of its
    # own (where one can be made), what a task orphans is re-parented to it rather than to init,
    # and its guardian ends whatever is left once it is gone, however it went.
    dedicate()
    try:
        execution = orchestrator.execute(workflow, file=path, env=env, max_parallel=max_parallel)
    except StoreWriteFailed as exc:
        # Every task was stopped. No alerts: their rules read the store that just failed.
        _fail(f"the run was stopped: {exc}", EXIT_STORE)
    renderer.close(execution)
    if alerts is not None:
        alerts.close()
    if as_json:
        click.echo(json.dumps(execution.to_dict(), default=str, indent=2))
    if execution.status is State.CANCELLED:
        sys.exit(EXIT_INTERRUPTED)
    if execution.status is not State.SUCCEEDED:
        sys.exit(EXIT_FAILED)


@main.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True)
@click.option("--strict", is_flag=True,
              help="Also warn about each spelling only the original Node format has, with "
              "the native one to write instead.")  # fmt: skip
@click.pass_obj
@friendly_errors
def validate(root: Path, files: tuple[Path, ...], as_json: bool, strict: bool) -> None:
    """Check workflow files; report every problem with its place.

    Literal paths are checked against the project's path policy too (templated ones when
    the workflow runs). Exit code 0 when every file is valid, 1 when one is invalid, 2 when
    one cannot be read (missing, a directory, not a regular file)."""
    from ..definition.loader import validate_file
    from ..definition.original import original_spellings
    from ..tasks.paths import PathPolicy, check_workflow

    policy = PathPolicy.for_project(root)

    def checks(data: dict[str, object]) -> list[Finding]:
        found = check_workflow(data, policy)
        return [*found, *original_spellings(data)] if strict else found

    reports = [validate_file(path, checks=checks) for path in files]
    if as_json:
        click.echo(json.dumps([r.to_dict() for r in reports], indent=2))
    else:
        for report in reports:
            if report.problems:
                print_problems(report.problems)
            if report.ok:
                note = f" ({len(report.warnings)} warning(s))" if report.warnings else ""
                click.echo(f"{report.source}: valid{note}")
    if any(r.unreadable for r in reports):
        sys.exit(EXIT_USAGE)
    if not all(r.ok for r in reports):
        sys.exit(EXIT_FAILED)


@main.command()
def schema() -> None:
    """Print the JSON Schema of workflow files (for editors)."""
    from ..definition.model import json_schema

    click.echo(json.dumps(json_schema(), indent=2))


@main.command()
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True)
@click.option("--workflow", "workflow_name", default=None, help="Only this workflow.")
@click.option("--status", default=None, help="Only runs that ended in this state.")
@click.option("--since", default=None, help="Only runs started in the last 7d, 12h, 30m...")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
@friendly_errors
def history(
    root: Path,
    limit: int,
    workflow_name: str | None,
    status: str | None,
    since: str | None,
    as_json: bool,
) -> None:
    """List recent executions, newest first."""
    from ..store.frames import resolve_since
    from .render import print_history

    try:
        since_moment = resolve_since(since)
    except ValueError as exc:
        _fail(f"bad --since value: {exc}")
    store = _store(root)
    rows = store.history(limit=limit, workflow=workflow_name, status=status, since=since_moment)
    if as_json:
        click.echo(json.dumps([r.to_dict() for r in rows], default=str, indent=2))
    else:
        print_history(rows)


@main.command()
@click.argument("execution_id", required=False)
@click.option("--execution-id", "execution_option", metavar="ID", default=None,
              help="The execution (the original's spelling of the ID argument).")  # fmt: skip
@click.option("--logs", "log_lines", type=click.IntRange(min=0), default=10, show_default=True,
              help="Last log lines to show per task.")  # fmt: skip
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
@friendly_errors
def status(
    root: Path,
    execution_id: str | None,
    execution_option: str | None,
    log_lines: int,
    as_json: bool,
) -> None:
    """Show one execution (ID or --execution-id ID, any unambiguous prefix): tasks,
    attempts, durations, exit codes, last log lines."""
    from .render import print_execution

    if execution_id and execution_option and execution_id != execution_option:
        _fail("give the execution once: as ID or as --execution-id ID")
    execution_id = execution_id or execution_option
    if not execution_id:
        _fail("which execution? give its id: workflow status ID (or --execution-id ID)")
        return

    execution = _store(root).get_execution(execution_id, logs=log_lines)
    if as_json:
        click.echo(json.dumps(execution.to_dict(), default=str, indent=2))
    else:
        print_execution(execution, log_lines)


@main.command()
@click.option("--days", type=click.IntRange(min=0), default=None,
              help="Keep this many days (default: cleanup.daysToKeep in the project's "
              "configuration, else 30).")  # fmt: skip
@click.option("--dry-run", is_flag=True, help="Only report what would be removed.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
@friendly_errors
def cleanup(root: Path, days: int | None, dry_run: bool, as_json: bool) -> None:
    """Remove executions older than N days: records, journals, executed notebooks, logs."""
    import shutil
    from datetime import datetime, timedelta, timezone

    from ..definition.durations import format_size
    from ..project import days_to_keep, output_copies

    keep = days if days is not None else days_to_keep(root)
    cutoff = datetime.now(timezone.utc) - timedelta(days=keep)
    from ..monitor.alerting import prune_alerts

    store = _store(root)
    report = store.cleanup(cutoff, dry_run=dry_run)
    alerts = prune_alerts(store.path, cutoff.timestamp(), dry_run=dry_run)
    copies = output_copies(root, report.executions)
    if not dry_run:
        for folder in copies:
            shutil.rmtree(folder, ignore_errors=True)
    if as_json:
        counts = {"alert_records": alerts, "notebook_copies": len(copies)}
        click.echo(json.dumps({**report.to_dict(), **counts}, indent=2))
        return
    verb = "would remove" if dry_run else "removed"
    click.echo(
        f"{verb} {len(report.executions)} execution(s) started before "
        f"{cutoff.astimezone():%Y-%m-%d %H:%M} ({keep} day(s) kept): {report.journals} "
        f"journal(s), {report.artifact_dirs} artifact folder(s), {alerts} alert record(s), "
        f"{len(copies)} notebook copy folder(s), {format_size(report.bytes)}"
    )


def _store(root: Path) -> ExecutionStore:
    from ..project import default_store_path
    from ..store import ExecutionStore

    return ExecutionStore(default_store_path(root))


# Last, so that it can use friendly_errors and the exit codes above; it imports only click.
from .monitor import monitor  # noqa: E402

main.add_command(monitor)

from .alerts import alerts  # noqa: E402

main.add_command(alerts)

from .create import create, generate  # noqa: E402
from .schedule import schedule  # noqa: E402
from .serve import serve  # noqa: E402
from .setup import cron, systemd  # noqa: E402

for _command in (schedule, serve, create, generate, cron, systemd):
    main.add_command(_command)

if __name__ == "__main__":  # pragma: no cover
    main()
