"""The ``%workflow`` line magic and the ``%%workflow`` cell magic (``%load_ext jupyter_workflows``).

``%workflow run|validate|history|status|monitor ...`` and ``%%workflow [--run] [--name NAME]``
each return an object with a rich display (see ``display.py``), so ``_`` holds it for the next
cell. Bad options and bad input raise ``UsageError``: IPython shows its message, no traceback.

Failing loudly, so that "Run All" stops and a headless ``papermill`` exits non-zero: a run that
does not succeed is shown, then raised as ``WorkflowFailed`` (naming each failed task and its
error); an invalid definition (``%%workflow``, ``%workflow validate``) raises ``UsageError``.
``--no-raise`` returns the view instead, to explore. ``%%workflow --name NAME`` registers the
cell's workflow in the kernel's session, so ``%workflow run NAME`` runs it.

Loading the extension imports IPython's magic machinery and nothing else: the engine, the store
(duckdb), pydantic and the widget are imported inside the subcommand that needs them, so
``%load_ext`` stays well under half a second.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring

from .session import Session

if TYPE_CHECKING:
    from ..definition.loader import ValidationReport
    from ..definition.model import Workflow
    from ..engine.orchestrator import WorkflowOrchestrator
    from ..engine.run import WorkflowRun
    from ..store import ExecutionStore
    from .display import ExecutionView

__all__ = ["WorkflowMagics", "load_ipython_extension"]

# Problems in a `%%workflow` cell carry the line numbers the notebook shows for the cell, where
# the `%%workflow` line itself is line 1: the body's first line is line 2.
CELL_LINE_OFFSET = 1

_PARAM_HELP = (
    "a run parameter, typed as papermill does (-p n 5 is the int 5): ${params.NAME}, and "
    "injected into every notebook task (repeatable)"
)
_NAME_VALUE = ("NAME", "VALUE")
_YAML_HELP = "run parameters as a YAML mapping, e.g. -y 'n: 5' (repeatable; -p wins)"
_NO_RAISE_HELP = "return the result even when the run failed (default: raise WorkflowFailed)"
_ROOT_HELP = (
    "where relative paths in workflows resolve and history is kept (default: the project the "
    "notebook's folder is in); FILE is relative to the notebook's folder"
)


@magic_arguments(name="workflow run")
@argument(
    "file",
    metavar="FILE",
    help="the workflow file (JSON or YAML), or the NAME a %%%%workflow --name cell registered",
)
@argument("--env", action="append", metavar="K=V,...", help="values for ${env.K} (repeatable)")
@argument("-p", "--parameter", nargs=2, action="append", metavar=_NAME_VALUE, help=_PARAM_HELP)
@argument("-y", "--parameters-yaml", action="append", metavar="YAML", help=_YAML_HELP)
@argument("--max-parallel", type=int, metavar="N", help="at most N task attempts at once")
@argument(
    "--background", action="store_true", help="return a handle at once; the run goes on meanwhile"
)
@argument(
    "--executor", choices=["local", "dask"], help="where tasks run (default: config, else local)"
)
@argument("--cluster", metavar="ADDRESS", help="run tasks on this Dask scheduler (implies dask)")
@argument("--no-raise", action="store_true", help=_NO_RAISE_HELP)
@argument("--resume", metavar="ID", help="resume this execution: reuse what succeeded there")
@argument("--from", dest="from_task", metavar="TASK", help="with --resume: re-run TASK and below")
@argument("--only", metavar="TASK", help="with --resume: run only TASK")
@argument("--no-cache", action="store_true", help="ignore every task's cache")
@argument("--refresh", action="append", metavar="TASK", help="ignore TASK's cache (repeatable)")
@argument("--project-root", metavar="DIR", help=_ROOT_HELP)
def _run_parser(line: str) -> None:
    """Run a workflow file with a live view; returns the Execution (or a BackgroundRun)."""


@magic_arguments(name="workflow resume")
@argument("execution_id", metavar="ID", help="an execution id or an unambiguous prefix")
@argument("--file", metavar="FILE", help="the workflow file (default: the execution's own)")
@argument("--from", dest="from_task", metavar="TASK", help="re-run TASK and everything below it")
@argument("--only", metavar="TASK", help="run only TASK, upstream values from the execution")
@argument("--env", action="append", metavar="K=V,...", help="values for ${env.K} (repeatable)")
@argument("--max-parallel", type=int, metavar="N", help="at most N task attempts at once")
@argument("--background", action="store_true", help="return a handle at once")
@argument("--executor", choices=["local", "dask"], help="where tasks run")
@argument("--cluster", metavar="ADDRESS", help="run tasks on this Dask scheduler")
@argument("--no-cache", action="store_true", help="ignore every task's cache")
@argument("--refresh", action="append", metavar="TASK", help="ignore TASK's cache (repeatable)")
@argument("--no-raise", action="store_true", help=_NO_RAISE_HELP)
@argument("--project-root", metavar="DIR", help=_ROOT_HELP)
def _resume_parser(line: str) -> None:
    """Resume an execution: a new run reusing the tasks that succeeded in it."""


@magic_arguments(name="workflow validate")
@argument("file", metavar="FILE", help="the workflow file (JSON or YAML)")
@argument("--no-raise", action="store_true", help="return the report of an invalid file")
def _validate_parser(line: str) -> None:
    """Check a workflow file: every problem with its line, task and field."""


@magic_arguments(name="workflow history")
@argument("--limit", type=int, default=20, metavar="N", help="at most N executions (20)")
@argument("--workflow", metavar="NAME", help="only this workflow")
@argument("--status", metavar="STATE", help="only executions in this state")
@argument("--project-root", metavar="DIR", help=_ROOT_HELP)
def _history_parser(line: str) -> None:
    """Recent executions, newest first (``.rows``, ``.to_dataframe()``)."""


@magic_arguments(name="workflow status")
@argument("execution_id", metavar="ID", help="an execution id or an unambiguous prefix")
@argument("--logs", type=int, default=10, metavar="N", help="last output lines per task (10)")
@argument("--project-root", metavar="DIR", help=_ROOT_HELP)
def _status_parser(line: str) -> None:
    """One execution: its tasks (children under their parent), attempts and last log lines."""


@magic_arguments(name="workflow monitor")
@argument("--workflow", metavar="NAME", help="only this workflow")
@argument("--project-root", metavar="DIR", help=_ROOT_HELP)
def _monitor_parser(line: str) -> None:
    """Health per workflow: runs, success rate, p50/p95 durations, last run."""


@magic_arguments(name="%workflow")
@argument("--run", action="store_true", help="run the workflow when it is valid")
@argument(
    "--name",
    metavar="NAME",
    help="the workflow's name (the body may then omit it); registers it for %%workflow run NAME",
)
@argument("--env", action="append", metavar="K=V,...", help="with --run: values for ${env.K}")
@argument("-p", "--parameter", nargs=2, action="append", metavar=_NAME_VALUE, help=_PARAM_HELP)
@argument("-y", "--parameters-yaml", action="append", metavar="YAML", help=_YAML_HELP)
@argument("--max-parallel", type=int, metavar="N", help="with --run: at most N attempts at once")
@argument("--background", action="store_true", help="with --run: run in the background")
@argument("--executor", choices=["local", "dask"], help="with --run: where tasks run")
@argument("--cluster", metavar="ADDRESS", help="with --run: run tasks on this Dask scheduler")
@argument("--no-raise", action="store_true", help="return the report or the failed run")
@argument("--project-root", metavar="DIR", help=_ROOT_HELP)
def _cell_parser(line: str) -> None:
    """The cell is a workflow definition (YAML or JSON): validate it; with --run, run it."""


@magics_class
class WorkflowMagics(Magics):
    """``%workflow`` and ``%%workflow``; ``session`` holds the workflows cells registered."""

    def __init__(self, shell: Any = None, **kwargs: Any):
        super().__init__(shell, **kwargs)
        self.session = Session()

    @line_cell_magic
    def workflow(self, line: str, cell: str | None = None) -> Any:
        try:
            if cell is not None:
                return _cell_magic(line, cell, self.session)
            return _line_magic(line, self.session)
        except _Failed as failed:
            # Shown, then raised from here (not through _user_errors, which would make it a
            # UsageError): the notebook shows the message, not the engine's insides.
            from IPython.display import display

            display(failed.view)
            raise _message_only(failed.error) from None
        except _Interrupted as stop:
            # Shown, then passed on as the interrupt it was, from here: the traceback is the
            # cell's line and this one, not the engine's insides.
            from IPython.display import display

            display(stop.view)
            raise KeyboardInterrupt(
                f"execution {stop.view.execution.id} was cancelled and recorded as such"
            ) from None


def _message_only(error: Exception) -> Exception:
    """``error``, shown by IPython as its one message (``_render_traceback_``): the frames
    would be the magic's and the engine's, never the user's code."""
    from .background import _message_only as message_only

    return message_only(error)


def load_ipython_extension(ipython: Any) -> None:
    """Register ``%workflow`` and ``%%workflow`` with ``ipython``."""
    ipython.register_magics(WorkflowMagics)


# -- the subcommands ------------------------------------------------------------------------


def _line_magic(line: str, session: Session) -> Any:
    command, rest = (line.split(None, 1) + ["", ""])[:2]
    if command not in _SUBCOMMANDS:
        what = f"unknown subcommand '{command}'" if command else "a subcommand is needed"
        raise UsageError(f"{what}; expected one of: {', '.join(_SUBCOMMANDS)}\n{_usages()}")
    parser, handler = _SUBCOMMANDS[command]
    args = _parse(parser, rest)
    with _user_errors():
        return handler(args, session)


def _run(args: Any, session: Session) -> Any:
    options = _run_options(args)
    root = _project_root(args.project_root)
    # A name a cell registered comes before a file of that name.
    registered = session.get(args.file)
    file = os.path.expanduser(args.file)
    if registered is None and not os.path.exists(file):
        from ..errors import DefinitionError
        from ..project import file_argument

        try:
            file_argument(file, root)  # its message, with its hint about relative paths
        except DefinitionError as exc:
            raise UsageError(f"{exc}; {session.unknown(args.file)}") from None
    workflow = file if registered is None else registered
    return _start(root, workflow, options, args.background, raise_on_failure=not args.no_raise)


def _resume(args: Any, session: Session) -> Any:
    options = _run_options(args)._replace(resume=args.execution_id)
    root = _project_root(args.project_root)
    file = args.file
    if file is None:
        old = _store(root).get_execution(args.execution_id)
        if not old.file:
            raise UsageError(
                f"execution {old.id} recorded no workflow file (it was run from a cell or "
                "from Python): give it with --file"
            )
        file = old.file
    return _start(
        root, os.path.expanduser(file), options, args.background,
        raise_on_failure=not args.no_raise,
    )  # fmt: skip


def _validate(args: Any, session: Session) -> Any:
    from ..definition.loader import validate_file
    from .display import ReportView

    report = validate_file(Path(args.file).expanduser())
    if not report.ok and not args.no_raise:
        raise _invalid(report, f"{args.file} is not a valid workflow")
    return ReportView(report)


def _history(args: Any, session: Session) -> Any:
    from ..execution.states import State
    from .display import HistoryView

    if args.limit < 1:
        raise UsageError(f"--limit must be at least 1, got {args.limit}\n{_usage(_history_parser)}")
    if args.status is not None and args.status not in {s.value for s in State}:
        states = ", ".join(s.value for s in State)
        raise UsageError(f"unknown --status '{args.status}'; expected one of: {states}")
    store = _store(_project_root(args.project_root))
    return HistoryView(store.history(limit=args.limit, workflow=args.workflow, status=args.status))


def _status(args: Any, session: Session) -> Any:
    from .display import ExecutionView

    if args.logs < 0:
        raise UsageError(f"--logs cannot be negative, got {args.logs}\n{_usage(_status_parser)}")
    store = _store(_project_root(args.project_root))
    return ExecutionView(store.get_execution(args.execution_id, logs=args.logs))


def _monitor(args: Any, session: Session) -> Any:
    from .display import HealthView

    store = _store(_project_root(args.project_root))
    return HealthView(store.workflow_metrics(workflow=args.workflow))


_SUBCOMMANDS: dict[str, tuple[Any, Callable[[Any, Session], Any]]] = {
    "run": (_run_parser, _run),
    "resume": (_resume_parser, _resume),
    "validate": (_validate_parser, _validate),
    "history": (_history_parser, _history),
    "status": (_status_parser, _status),
    "monitor": (_monitor_parser, _monitor),
}


def _cell_magic(line: str, cell: str, session: Session) -> Any:
    from .display import ReportView

    args = _parse(_cell_parser, line)
    run_only = (
        args.env,
        args.parameter,
        args.parameters_yaml,
        args.max_parallel is not None,
        args.background,
        args.executor,
        args.cluster,
    )
    if not args.run and any(run_only):
        raise UsageError(
            "--env, -p, -y, --max-parallel, --background, --executor and --cluster need --run\n"
            f"{_usage(_cell_parser)}"
        )
    options = _run_options(args)
    root = _project_root(args.project_root)
    with _user_errors():
        report = _validate_cell(cell, args.name)
    if report.workflow is not None and args.name is not None:
        session.register(args.name, report.workflow)
    if not args.run:
        if report.workflow is None and not args.no_raise:
            raise _invalid(report, "the workflow in this cell is not valid")
        return ReportView(report)
    if report.workflow is None:
        raise _invalid(report, "the workflow in this cell was not run")
    if report.warnings:
        from IPython.display import display

        display(ReportView(report))
    with _user_errors():
        return _start(
            root, report.workflow, options, args.background, raise_on_failure=not args.no_raise
        )


def _invalid(report: ValidationReport, what: str) -> UsageError:
    errors = "\n".join(f"  {p}" for p in report.errors)
    return UsageError(f"{what}: {len(report.errors)} error(s)\n{errors}")


def _validate_cell(body: str, name: str | None) -> ValidationReport:
    """The cell's report; ``name`` replaces the workflow's name (so the body may lack one)."""
    from ..definition.loader import ValidationReport, load_workflow, parse_text, validate_text

    report = validate_text(body, source="<cell>", line_offset=CELL_LINE_OFFSET)
    if name is None:
        return report
    problems = [p for p in report.problems if not (p.field == "name" and p.task_id is None)]
    if any(p.is_error for p in problems):
        return ValidationReport(report.source, problems)
    data, _ = parse_text(body, source="<cell>")
    workflow = load_workflow({**data, "name": name})  # a bad --name raises ValidationError
    return ValidationReport(report.source, problems, workflow)


# -- running --------------------------------------------------------------------------------


def _start(
    root: Path,
    workflow: str | Workflow,
    options: RunOptions,
    background: bool,
    *,
    raise_on_failure: bool = True,
) -> Any:
    """Prepare the run (a bad definition raises before anything shows), show its live view,
    then run it here or in the background (whose failure is the handle's to report)."""
    from ..engine.orchestrator import WorkflowOrchestrator
    from ..monitor.alerting import attach_alerts

    env = options.env
    orchestrator = WorkflowOrchestrator(root, executor=options.executor, cluster=options.cluster)
    model, file = orchestrator.load(workflow)
    orchestrator.store.check_writable()  # before alerts, which keep their records there
    # A foreground cell sends its alerts as it finishes; a background run hands them to the
    # manager's thread, which then ends.
    alerts = attach_alerts(
        orchestrator, defer=not background, warn=_warn, env={**os.environ, **env}
    )
    relay = _Relay()
    run = orchestrator.prepare(
        model, file=file, env=env, max_parallel=options.max_parallel, sinks=[relay],
        resume=options.resume, from_task=options.from_task, only=options.only,
        no_cache=options.no_cache, refresh=options.refresh, params=options.params,
    )  # fmt: skip
    view = relay.target = _live_view(run, _usual_duration(orchestrator, model))
    view.display()
    if background:
        from .background import start_background

        def done(_execution: Any) -> None:
            try:
                _close(view)
            finally:
                if alerts is not None:
                    alerts.close(timeout=0)

        handle = start_background(
            orchestrator, run, on_done=done, raise_on_failure=raise_on_failure
        )
        relay.also = handle._event
        return handle
    try:
        return _foreground(orchestrator, run, view, raise_on_failure)
    finally:
        if alerts is not None:
            alerts.close()


def _warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


def _foreground(
    orchestrator: WorkflowOrchestrator, run: WorkflowRun, view: Any, raise_on_failure: bool
) -> ExecutionView:
    """Run to the end with the engine's sync facade (in a worker thread inside a kernel).

    An interrupt cancels the run, which is recorded as cancelled; the cancelled execution is
    shown and the interrupt passed on, so "Run All" stops here as it would for any cell.
    A run that failed (``raise_on_failure``) is shown and raised as WorkflowFailed."""
    from ..engine.sync import run_sync
    from ..errors import WorkflowFailed
    from ..execution.states import State
    from .display import ExecutionView

    try:
        execution = run_sync(lambda: orchestrator.run_prepared(run))
    except (asyncio.CancelledError, KeyboardInterrupt):
        execution = run.execution
    finally:
        _close(view)
    result = ExecutionView(execution)
    if execution.status is State.CANCELLED:
        raise _Interrupted(result)
    if raise_on_failure:
        try:
            execution.raise_for_status()
        except WorkflowFailed as failed:
            raise _Failed(result, failed) from None
    return result


class _Failed(BaseException):
    """A foreground run did not succeed (``view`` shows it, ``error`` says why)."""

    def __init__(self, view: ExecutionView, error: Exception):
        super().__init__()
        self.view, self.error = view, error


class _Interrupted(BaseException):
    """A foreground run was cancelled by an interrupt (``view`` shows it)."""

    def __init__(self, view: ExecutionView):
        super().__init__()
        self.view = view


class _Relay:
    """A sink whose target is set after ``prepare``: the view appears only for a valid run.
    ``also``: a background run's handle, which refreshes its outputs as the run goes."""

    __slots__ = ("also", "target")

    def __init__(self) -> None:
        self.target: Any = None
        self.also: Any = None

    def __call__(self, event: Any) -> None:
        if self.target is not None:
            self.target(event)
        if self.also is not None:
            self.also(event)


def _live_view(run: WorkflowRun, expected: float | None = None) -> Any:
    """The live widget (text in a terminal); the CLI's plain lines if the widget cannot load."""
    title = run.workflow.name + (f"  ·  {run.file}" if run.file else "")
    try:
        from .widget import RunView
    except ImportError:
        return _PlainView()
    return RunView(title=title, expected=expected)


def _usual_duration(orchestrator: WorkflowOrchestrator, workflow: Workflow) -> float | None:
    """Seconds a run of ``workflow`` usually takes, for the progress line's ETA: the median
    of its finished runs in the history, else its ``expected_duration``, else None."""
    p50: float | None = None
    try:
        rows = orchestrator.store.workflow_metrics(workflow=workflow.name)
        p50 = rows[0]["p50_ms"] if rows else None
    except Exception as exc:  # an ETA is a nicety: a store that cannot say costs only that
        _warn(f"no ETA: the history could not be read: {exc}")
    if p50:
        return float(p50) / 1000
    if workflow.expected_duration:
        return float(workflow.expected_duration)  # the model keeps seconds
    return None


class _PlainView:
    def __init__(self) -> None:
        from ..ui.text import PlainRenderer

        self._renderer = PlainRenderer()

    def __call__(self, event: Any) -> None:
        self._renderer(event)

    def display(self) -> None:
        pass

    def close(self) -> None:
        pass


def _close(view: Any) -> None:
    try:
        view.close()
    except Exception as exc:  # a view that fails to draw its last state must not fail the run
        print(f"jupyter-workflows: the live view could not be closed: {exc}")


# -- options and errors ---------------------------------------------------------------------


def _parse(parser: Any, argstring: str) -> Any:
    """Parse with the subcommand's magic_arguments parser; errors carry the usage line."""
    try:
        return parse_argstring(parser, argstring)
    except (UsageError, ValueError) as exc:  # ValueError: unbalanced quotes
        raise UsageError(f"{exc}\n{_usage(parser)}") from None


def _usage(parser: Any) -> str:
    # IPython's formatter writes usage as a wrapped RST block ("::\n\n  %workflow run ...");
    # one line reads better in an error message.
    text = parser.parser.format_usage().strip().removeprefix("::")
    return "usage: " + " ".join(text.split())


def _usages() -> str:
    return "\n".join(_usage(parser) for parser, _ in _SUBCOMMANDS.values())


class RunOptions(NamedTuple):
    env: dict[str, str]
    max_parallel: int | None
    executor: str | None
    cluster: str | None
    resume: str | None = None
    from_task: str | None = None
    only: str | None = None
    no_cache: bool = False
    refresh: tuple[str, ...] = ()
    params: dict[str, Any] | None = None


def _run_options(args: Any) -> RunOptions:
    from ..ui.options import parse_env_pairs, parse_parameters

    try:
        env = parse_env_pairs(args.env or [])
        params = parse_parameters(
            [(name, _unquoted(value)) for name, value in getattr(args, "parameter", None) or []],
            [_unquoted(text) for text in getattr(args, "parameters_yaml", None) or []],
        )
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if args.max_parallel is not None and args.max_parallel < 1:
        raise UsageError(f"--max-parallel must be at least 1, got {args.max_parallel}")
    return RunOptions(
        env, args.max_parallel, args.executor, args.cluster,
        resume=getattr(args, "resume", None), from_task=getattr(args, "from_task", None),
        only=getattr(args, "only", None), no_cache=bool(getattr(args, "no_cache", False)),
        refresh=tuple(getattr(args, "refresh", None) or ()), params=params,
    )  # fmt: skip


def _unquoted(text: str) -> str:
    """``text`` without one pair of enclosing quotes: IPython's option parser keeps them
    (``-y "{n: 5}"`` arrives quoted), where a shell would have removed them."""
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    return text


def _project_root(value: str | None) -> Path:
    """``--project-root``, else ``$WORKFLOW_PROJECT_ROOT``, else the project the kernel's
    working directory (the notebook's folder) is in."""
    from ..errors import ConfigError
    from ..project import project_root

    try:
        return project_root(value)
    except ConfigError as exc:
        raise UsageError(str(exc)) from None


def _store(root: Path) -> ExecutionStore:
    from ..project import default_store_path
    from ..store import ExecutionStore

    return ExecutionStore(default_store_path(root))


@contextmanager
def _user_errors() -> Iterator[None]:
    """Our errors (bad definition, missing file, unknown id, ...) as one clear UsageError."""
    from ..errors import ValidationError, WorkflowError

    try:
        yield
    except ValidationError as exc:
        errors = [p for p in exc.problems if p.is_error]
        lines = "\n".join(f"  {p}" for p in errors)
        raise UsageError(f"{len(errors)} error(s) in the workflow definition:\n{lines}") from None
    except WorkflowError as exc:
        raise UsageError(str(exc)) from None


WorkflowMagics.workflow.__doc__ = "Run, check and inspect workflows.\n\n" + "\n".join(
    parser.__doc__ for parser in [*(p for p, _ in _SUBCOMMANDS.values()), _cell_parser]
)
