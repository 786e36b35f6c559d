"""The ``workflow`` command (also ``jupyter workflows``).

Exit codes: 0 success, 1 a run failed (or validation found errors), 2 bad input (invalid
definition, unknown file, bad option, a store that cannot be used), 3 a write to the store
failed mid-run (disk full: the run was stopped), 130 interrupted. Heavy modules are imported
inside the commands that need them so that ``workflow validate`` starts fast.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from ..execution.states import State
from . import collector
from .common import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_STORE,
    EXIT_USAGE,
    executor_options,
    friendly_errors,
    json_text,
    print_problems,
    since_option,
    skip_httpx_command_line,
    skip_pydantic_plugin_lookup,
    starts_fast,
)
from .common import fail as _fail
from .common import warn as _warn
from .lazy import LazyCommand, LazyGroup
from .pipes import guard_stdout

if TYPE_CHECKING:
    from collections.abc import Callable
    from datetime import datetime

    from ..definition.locate import Finding
    from ..store import ExecutionStore

F = TypeVar("F", bound="Callable[..., Any]")
STATES = [state.value for state in State]


# The commands kept in modules of their own, imported only when used: (module, attribute,
# the short help `workflow --help` lists). tests/cli/test_lazy.py checks it against them.
LAZY_COMMANDS = {
    "alerts": LazyCommand(".alerts", "alerts", "Alerts raised on this store, newest first: "
                          "pending (in the outbox, with their next try), sent, failed (dropped "
                          "after the last attempt); and the episodes firing now."),
    "cache": LazyCommand(".cache", "cache", "Cached task results: list them, clear them."),
    "cancel": LazyCommand(".cancel", "cancel", "Cancel a running execution (its id, or a "
                          "prefix naming one), wherever it runs: the process running it "
                          "(`workflow run`, cron, `workflow serve`, a kernel, the lab) stops "
                          "its tasks within a second and records it cancelled, by `cli`."),
    "create": LazyCommand(".create", "create", "Create a workflow from a template: web-app, "
                          "ci-cd, scheduled or custom."),
    "cron": LazyCommand(".setup", "cron", "Run workflows from your crontab: install, list, "
                        "remove."),
    "generate": LazyCommand(".create", "generate", "Generate a workflow of a type: the create "
                            "templates, plus file-watch and webhook."),
    "monitor": LazyCommand(".monitor", "monitor", "Health of recorded runs: success rates and "
                           "durations per workflow and task."),
    "schedule": LazyCommand(".schedule", "schedule", "Run a workflow on a cron schedule until "
                            "stopped (Ctrl-C or SIGTERM)."),
    "secrets": LazyCommand(".secrets", "secrets", "Secrets for ${secret.NAME}: list them, "
                           "check what a workflow needs."),
    "serve": LazyCommand(".serve", "serve", "Serve the project's triggers "
                         "(workflows/definitions/ and *.workflow.* files) until stopped: "
                         "webhooks, file changes and cron schedules, all through one bounded "
                         "run queue."),
    "systemd": LazyCommand(".setup", "systemd", "Write a systemd service and timer that run "
                           "FILE on a calendar."),
}  # fmt: skip


class _WorkflowCommand(LazyGroup):
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        # Called with no arguments, the group is the program (its console script, ``python
        # -m``) and ends the process itself (exiting.py). A script that passes its own
        # arguments, as a test's CliRunner calls ``main``, keeps its process and the
        # SystemExit to catch.
        if args or kwargs:
            return self.main(*args, **kwargs)
        try:
            return self.main()
        except SystemExit as exc:
            from .exiting import leave

            leave(exc.code)
            raise

    def main(self, *args: Any, **kwargs: Any) -> Any:
        guard_stdout()  # before anything prints, --help included
        collector.pause()  # until the command's work begins (collector.py)
        try:
            return super().main(*args, **kwargs)
        finally:
            collector.resume()


@click.group(
    cls=_WorkflowCommand,
    lazy=LAZY_COMMANDS,
    package=__name__,
    context_settings={"help_option_names": ["-h", "--help"]},
)
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
    skip_httpx_command_line()
    try:
        ctx.obj = find_project_root(project_root)
    except ConfigError as exc:
        _fail(str(exc))


def parameter_options(func: F) -> F:
    """``-p NAME VALUE`` and ``-y YAML``: the run's parameters (``${params.NAME}``)."""
    func = click.option(
        "-y",
        "--parameters-yaml",
        "parameter_yaml",
        multiple=True,
        metavar="YAML",
        help="Run parameters as a YAML mapping, e.g. -y 'n: 5' (repeatable; -p wins).",
    )(func)
    return click.option(
        "-p",
        "--parameter",
        "parameter_pairs",
        nargs=2,
        multiple=True,
        metavar="NAME VALUE",
        help="A run parameter, typed as papermill does (-p n 5 is the int 5): "
        "${params.NAME}, and injected into every notebook task (repeatable). A resumed run "
        "runs with the parameters of the run it resumes; one given here replaces that one.",
    )(func)


def reuse_options(func: F) -> F:
    """``--from``, ``--only``, ``--no-cache`` and ``--refresh``: what a run may reuse."""
    for option in reversed(
        [
            click.option("--from", "from_task", metavar="TASK", default=None,
                         help="With a resumed run: re-run TASK and everything downstream of "
                         "it, reusing the rest."),
            click.option("--only", "only", metavar="TASK", default=None,
                         help="With a resumed run: run only TASK, its upstream values taken "
                         "from the run resumed."),
            click.option("--no-cache", is_flag=True,
                         help="Ignore every task's cache: run them all (their new results are "
                         "cached)."),
            click.option("--refresh", "refresh", metavar="TASK", multiple=True,
                         help="Ignore TASK's cache entries (repeatable)."),
        ]
    ):  # fmt: skip
        func = option(func)
    return func


@main.command()
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--env", "env_pairs", multiple=True, help="K=V[,K2=V2]: values for ${env.K}.")
@click.option("--max-parallel", type=click.IntRange(min=1), default=None, metavar="N",
              help="At most N task attempts at once (default: the workflow's own).")  # fmt: skip
@parameter_options
@click.option("--dry-run", is_flag=True, help="Print the plan without running anything.")
@click.option("--json", "as_json", is_flag=True, help="Print the execution as JSON.")
@click.option("--no-alerts", is_flag=True, help="Send no alerts for this run.")
@click.option("--timestamps", is_flag=True,
              help="Start each progress line with the time (logs; cron lines use it).")  # fmt: skip
@click.option("--resume", "resume", metavar="ID", default=None,
              help="Resume execution ID (or an unambiguous prefix) of this workflow: tasks "
              "that succeeded there and are unchanged are reused, the others run.")  # fmt: skip
@reuse_options
@executor_options
@click.pass_obj
@friendly_errors
@starts_fast
def run(
    root: Path,
    file: Path,
    dry_run: bool,
    env_pairs: tuple[str, ...],
    parameter_pairs: tuple[tuple[str, str], ...],
    parameter_yaml: tuple[str, ...],
    **options: Any,
) -> None:
    """Run a workflow file."""
    from ..ui.options import parse_env_pairs, parse_parameters

    try:
        env = parse_env_pairs(env_pairs)
        params = parse_parameters(parameter_pairs, parameter_yaml)
    except ValueError as exc:
        _fail(str(exc))
    if dry_run:
        from ..engine.orchestrator import WorkflowOrchestrator
        from .plan import print_plan

        workflow, _ = WorkflowOrchestrator(root).load(file)
        print_plan(workflow, env)
        return
    _run(root, file, env, params=params, **options)


@main.command()
@click.argument("execution_id")
@click.option("--file", "file", type=click.Path(path_type=Path), default=None,
              help="The workflow file (default: the one the execution was run from, as it "
              "is now).")  # fmt: skip
@click.option("--env", "env_pairs", multiple=True, help="K=V[,K2=V2]: values for ${env.K}.")
@click.option("--max-parallel", type=click.IntRange(min=1), default=None, metavar="N",
              help="At most N task attempts at once (default: the workflow's own).")  # fmt: skip
@parameter_options
@click.option("--json", "as_json", is_flag=True, help="Print the execution as JSON.")
@click.option("--no-alerts", is_flag=True, help="Send no alerts for this run.")
@click.option("--timestamps", is_flag=True,
              help="Start each progress line with the time (logs; cron lines use it).")  # fmt: skip
@reuse_options
@executor_options
@click.pass_obj
@friendly_errors
@starts_fast
def resume(
    root: Path,
    execution_id: str,
    file: Path | None,
    env_pairs: tuple[str, ...],
    parameter_pairs: tuple[tuple[str, str], ...],
    parameter_yaml: tuple[str, ...],
    **options: Any,
) -> None:
    """Resume an execution: a new run that reuses the tasks that succeeded in it.

    Same as ``workflow run FILE --resume ID``, with FILE the definition the execution was run
    from, and its parameters (-p/-y replace single ones)."""
    from ..ui.options import parse_env_pairs, parse_parameters

    try:
        env = parse_env_pairs(env_pairs)
        params = parse_parameters(parameter_pairs, parameter_yaml)
    except ValueError as exc:
        _fail(str(exc))
    old = _store(root).get_execution(execution_id)
    if file is None:
        if not old.file:
            _fail(
                f"execution {old.id} recorded no workflow file (it was run from Python or a "
                "notebook cell): give it with --file"
            )
        file = Path(str(old.file))
    _run(root, file, env, resume=old.id, params=params, **options)


def _run(
    root: Path,
    file: Path,
    env: dict[str, str],
    *,
    max_parallel: int | None,
    as_json: bool,
    no_alerts: bool,
    executor: str | None,
    cluster: str | None,
    resume: str | None,
    timestamps: bool = False,
    from_task: str | None,
    only: str | None,
    no_cache: bool,
    refresh: tuple[str, ...],
    params: dict[str, Any] | None = None,
) -> None:
    from ..tasks.custody import dedicate_soon

    # This process runs one workflow and nothing else: all it starts is born in a cgroup of its
    # own (where one can be made), what a task orphans is re-parented to it rather than to init,
    # and its guardian ends whatever is left once it is gone, however it went. Set up on a
    # thread while the run loads (the kernel takes ~15 ms to move a process into a cgroup).
    dedicated = dedicate_soon()
    try:
        from ..engine.orchestrator import WorkflowOrchestrator
        from .render import make_renderer

        orchestrator = WorkflowOrchestrator(root, executor=executor, cluster=cluster)
        workflow, path = orchestrator.load(file, plain=True)  # this process only runs it
        # Before alerts (which keep their records in the store) and before any task: a store
        # that cannot record the run stops it here, with what to do (exit code 2).
        orchestrator.store.check_writable()
        # Set up before anything runs, so a resume that cannot be done is refused here (exit 2).
        prepared = orchestrator.prepare(
            workflow, file=path, env=env, max_parallel=max_parallel, resume=resume,
            from_task=from_task, only=only, no_cache=no_cache, refresh=refresh, params=params,
        )  # fmt: skip
        renderer = make_renderer(quiet=as_json, timestamps=timestamps)
        prepared.add_sink(renderer)
        alerts = None
        if not no_alerts:
            from ..monitor.alerting import attach_alerts

            alerts = attach_alerts(orchestrator, defer=True, warn=_warn, env={**os.environ, **env})
            if alerts is not None:
                alerts.add_workflow(workflow)  # its notifications, without loading it again
                prepared.add_sink(alerts)  # a sink of the run: attached after it was prepared
    finally:
        dedicated()  # also when the run is refused: the guardian knows of the cgroup then
    collector.resume()  # the start is over (collector.py)

    from ..errors import StoreWriteFailed
    from ..execution.states import State

    try:
        execution = orchestrator.execute_prepared(prepared, raise_on_failure=False)
    except StoreWriteFailed as exc:
        # Every task was stopped. No alerts: their rules read the store that just failed.
        _fail(f"the run was stopped: {exc}", EXIT_STORE)
    renderer.close(execution)
    if alerts is not None:
        alerts.close()
    if as_json:
        click.echo(json_text(execution.to_dict()))
    if execution.status is State.CANCELLED:
        sys.exit(EXIT_INTERRUPTED)
    if execution.status is not State.SUCCEEDED:
        sys.exit(EXIT_FAILED)


@main.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print each file's report as JSON.")
@click.option("--strict", is_flag=True,
              help="Also warn about each spelling only the original Node format has, with "
              "the native one to write instead.")  # fmt: skip
@click.pass_obj
@friendly_errors
@starts_fast
def validate(root: Path, files: tuple[Path, ...], as_json: bool, strict: bool) -> None:
    """Check workflow files; report every problem with its place.

    Literal paths are checked against the project's path policy too (templated ones when
    the workflow runs). Exit code 0 when every file is valid, 1 when one is invalid, 2 when
    one cannot be read (missing, a directory, not a regular file)."""
    from ..definition.loader import validate_file
    from ..tasks.paths import PathPolicy, check_workflow

    policy = PathPolicy.for_project(root)

    def checks(data: dict[str, object]) -> list[Finding]:
        found = check_workflow(data, policy)
        if not strict:
            return found
        from ..definition.original import original_spellings

        return [*found, *original_spellings(data)]

    reports = [validate_file(path, checks=checks) for path in files]
    if as_json:
        import json

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
@friendly_errors
def schema() -> None:
    """Print the JSON Schema of workflow files (for editors)."""
    import json

    from ..definition.model import json_schema

    click.echo(json.dumps(json_schema(), indent=2))


@main.command()
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True,
              help="At most this many executions.")  # fmt: skip
@click.option("--workflow", "workflow_name", default=None, help="Only this workflow.")
@click.option("--status", type=click.Choice(STATES), default=None,
              help="Only runs in this state.")  # fmt: skip
@since_option
@click.option("--json", "as_json", is_flag=True, help="Print the executions as JSON.")
@click.pass_obj
@friendly_errors
def history(
    root: Path,
    limit: int,
    workflow_name: str | None,
    status: str | None,
    since: datetime | None,
    as_json: bool,
) -> None:
    """List recent executions, newest first."""
    from .render import print_history

    store = _store(root)
    rows = store.history(limit=limit, workflow=workflow_name, status=status, since=since)
    if as_json:
        click.echo(json_text([r.to_dict() for r in rows]))
    else:
        print_history(rows)


@main.command()
@click.argument("execution_id", required=False)
@click.option("--execution-id", "execution_option", metavar="ID", default=None,
              help="The execution (the original's spelling of the ID argument).")  # fmt: skip
@click.option("--logs", "log_lines", type=click.IntRange(min=0), default=10, show_default=True,
              help="Last log lines to show per task.")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print the execution as JSON.")
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
        click.echo(json_text(execution.to_dict()))
    else:
        print_execution(execution, log_lines)


@main.command()
@click.option("--days", type=click.IntRange(min=0), default=None,
              help="Keep this many days (default: cleanup.daysToKeep in the project's "
              "configuration, else 30).")  # fmt: skip
@click.option("--dry-run", is_flag=True, help="Only report what would be removed.")
@click.option("--json", "as_json", is_flag=True, help="Print what was removed as JSON.")
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
        import json

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


if __name__ == "__main__":  # pragma: no cover
    main()
