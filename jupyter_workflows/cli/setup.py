"""``workflow cron install|list|remove`` and ``workflow systemd``: run a workflow from the system.

Both write absolute paths only (cron and systemd start with almost no environment): the project
root, the workflow file, and the ``workflow`` executable of this installation (next to
``sys.executable``; ``python -m jupyter_workflows`` when there is none). The workflow is
validated first, so a broken definition is refused now rather than failing silently at 02:00.

Cron: one crontab line per workflow file, tagged at its end with ``# jupyter-workflows: FILE``;
``list`` shows only tagged lines and ``remove`` removes exactly the one for FILE, leaving every
other line as it was. Installing the same file again replaces its line. The crontab program is
``$WORKFLOW_CRONTAB`` (default ``crontab``). Output goes to a log file, by default
``<store>/cron/<name>.log``.

Systemd: ``workflow-<name>.service`` (oneshot, ``WorkingDirectory`` the project root) and
``workflow-<name>.timer`` (``OnCalendar``, ``Persistent=true``: a run missed while the machine
was off happens at the next boot), checked with ``systemd-analyze`` when it is installed.
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path
from typing import Any

import click

from .common import EXIT_FAILED, friendly_errors, warn
from .common import fail as _fail

MARKER = "# jupyter-workflows: "
_CRON_MACROS = ("@reboot", "@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight",
                "@hourly")  # fmt: skip
_CRON_NAMES = re.compile(r"jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec|sun|mon|tue|wed|thu|"
                         r"fri|sat", re.IGNORECASE)  # fmt: skip


# ------------------------------------------------------------------ shared


def _workflow_file(root: Path, file: Path) -> tuple[Path, Any]:
    """The absolute definition path (relative to the current directory) and its validated
    model."""
    from ..definition.loader import load_workflow
    from ..project import file_argument

    path = file_argument(file, root)
    return path, load_workflow(path)


def workflow_command() -> list[str]:
    """The absolute command that starts this installation's ``workflow``."""
    bindir = Path(sys.executable).absolute().parent  # not resolved: keep the venv's bin
    for name in ("workflow", "workflow.exe"):
        candidate = bindir / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return [str(candidate)]
    return [str(Path(sys.executable).absolute()), "-m", "jupyter_workflows"]


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-.") or "workflow"


# ------------------------------------------------------------------ cron


def check_cron(expr: str) -> str | None:
    """Why ``expr`` is not a crontab schedule (5 fields or an @macro), or None when it is."""
    fields = expr.split()
    if len(fields) == 1 and fields[0].lower() in _CRON_MACROS:
        return None
    if len(fields) != 5:
        return (f"expected 5 fields 'minute hour day-of-month month day-of-week' (or one of "
                f"{', '.join(_CRON_MACROS)}), got {len(fields)}")  # fmt: skip
    for field in fields:
        if not re.fullmatch(r"[0-9*,/-]*", _CRON_NAMES.sub("", field)):
            return f"'{field}' is not a cron field (digits, names, '*', ',', '-', '/')"
    from croniter import croniter

    try:
        croniter(expr)
    except Exception as exc:  # croniter's errors name the bad value: show them
        return str(exc).replace(f"[{expr}] ", "")
    return None


def _crontab_program() -> str:
    import shutil

    program = os.environ.get("WORKFLOW_CRONTAB", "crontab")
    found = shutil.which(program)
    if found is None:
        _fail(f"'{program}' not found: install cron (Debian/Ubuntu: apt-get install cron) or set "
              "WORKFLOW_CRONTAB to the crontab program", EXIT_FAILED)  # fmt: skip
    return str(found)


def read_crontab(program: str) -> str:
    """The user's crontab ('' when there is none yet)."""
    import subprocess

    done = subprocess.run([program, "-l"], capture_output=True, text=True)
    if done.returncode == 0:
        return done.stdout
    if "no crontab" in done.stderr.lower():
        return ""
    _fail(f"'{program} -l' failed: {done.stderr.strip() or f'exit code {done.returncode}'}",
          EXIT_FAILED)  # fmt: skip
    return ""


def write_crontab(program: str, text: str) -> None:
    import subprocess

    done = subprocess.run([program, "-"], input=text, capture_output=True, text=True)
    if done.returncode != 0:
        _fail(f"'{program} -' refused the new crontab: {done.stderr.strip()}", EXIT_FAILED)


def _cron_escape(text: str) -> str:
    return text.replace("%", "\\%")  # cron turns a bare % into a newline


def cron_line(expr: str, root: Path, file: Path, log: Path) -> str:
    """The crontab line that runs ``file`` in ``root`` on ``expr``, tagged as ours."""
    import shlex

    words = [*workflow_command(), "run", "--timestamps", str(file)]
    run = " ".join(shlex.quote(part) for part in words)
    command = f"cd {shlex.quote(str(root))} && {run} >> {shlex.quote(str(log))} 2>&1"
    return _cron_escape(f"{' '.join(expr.split())} {command} {MARKER}{file}")


def _own_schedule(path: Path, workflow: Any) -> str:
    """The schedule of the workflow's cron trigger; a clear error when it has none."""
    trigger = workflow.trigger
    if trigger is None or trigger.type != "cron":
        kind = "no trigger" if trigger is None else f"a {trigger.type} trigger"
        _fail(f"{path} has {kind}, so no schedule of its own: give one with --cron")
    config = trigger.config
    if config.timezone:
        # cron(8) has no time zone per line: the line runs in the machine's zone.
        warn(
            f"{path}: the trigger's timezone '{config.timezone}' does not reach the crontab; "
            "the line runs on the machine's time zone (`workflow schedule` honours it)"
        )
    return str(config.schedule)


def _tag(line: str) -> str | None:
    """The workflow file a crontab line of ours runs, or None for any other line."""
    if line.lstrip().startswith("#") or MARKER not in line:
        return None
    return line.rsplit(MARKER, 1)[1].strip().replace("\\%", "%")


def _without(text: str, file: Path) -> tuple[list[str], list[str]]:
    """(the crontab's lines without ours for ``file``, the removed lines)."""
    kept: list[str] = []
    removed: list[str] = []
    for line in text.splitlines():
        (removed if _tag(line) == str(file) else kept).append(line)
    return kept, removed


@click.group()
def cron() -> None:
    """Run workflows from your crontab: install, list, remove."""


@cron.command("install")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--cron", "expr", default=None,
              help='When, e.g. "0 2 * * *" or @daily (default: the workflow\'s own cron '
              "trigger).")  # fmt: skip
@click.option("--log", "log", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Append the output here (default: <store>/cron/<name>.log).")  # fmt: skip
@click.option("--dry-run", is_flag=True, help="Print the line; change nothing.")
@click.pass_obj
@friendly_errors
def cron_install(root: Path, file: Path, expr: str | None, log: Path | None, dry_run: bool) -> None:
    """Add (or replace) the crontab line that runs FILE on a schedule: --cron, else the
    workflow's own cron trigger."""
    path, workflow = _workflow_file(root, file)
    if expr is None:
        expr = _own_schedule(path, workflow)
    problem = check_cron(expr)
    if problem:
        _fail(f"invalid --cron '{expr}': {problem}")
    if log is None:
        from ..project import default_store_path

        log = default_store_path(root) / "cron" / f"{_safe_name(workflow.name)}.log"
    line = cron_line(expr, root, path, log.absolute())
    if dry_run:
        click.echo(line)
        return
    program = _crontab_program()
    kept, removed = _without(read_crontab(program), path)
    log.absolute().parent.mkdir(parents=True, exist_ok=True)  # ">>" cannot create folders
    write_crontab(program, "\n".join([*kept, line]) + "\n")
    click.echo(f"{'replaced' if removed else 'added'} crontab line:\n{line}")


@cron.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the installed lines as JSON.")
@friendly_errors
def cron_list(as_json: bool) -> None:
    """Show the crontab lines that run workflows."""
    ours = []
    for line in read_crontab(_crontab_program()).splitlines():
        file = _tag(line)
        if file is not None:
            ours.append({"file": file, "schedule": _schedule_of(line), "line": line})
    if as_json:
        click.echo(json.dumps(ours, indent=2))
    elif not ours:
        click.echo("no workflows in the crontab")
    for entry in [] if as_json else ours:
        click.echo(f"{entry['schedule']}  {entry['file']}")


def _schedule_of(line: str) -> str:
    fields = line.split()
    return fields[0] if fields[0].startswith("@") else " ".join(fields[:5])


@cron.command("remove")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--dry-run", is_flag=True, help="Print what would be removed; change nothing.")
@click.pass_obj
@friendly_errors
def cron_remove(root: Path, file: Path, dry_run: bool) -> None:
    """Remove the crontab line of FILE (the file itself may be gone already)."""
    program = _crontab_program()
    text = read_crontab(program)
    candidates = [file.absolute(), (root / file).absolute()]
    for path in candidates:
        kept, removed = _without(text, path)
        if removed:
            break
    else:
        _fail(f"no crontab line of ours runs {file} (see: workflow cron list)", EXIT_FAILED)
    if not dry_run:
        write_crontab(program, "".join(f"{line}\n" for line in kept))
    verb = "would remove" if dry_run else "removed"
    click.echo(f"{verb} crontab line:\n" + "\n".join(removed))


# ------------------------------------------------------------------ systemd


def _unit_quote(word: str) -> str:
    """A word of ``ExecStart=``: % and $ kept literal (systemd expands them), quoted if needed."""
    word = word.replace("%", "%%").replace("$", "$$")
    if re.search(r"[\s\"'\\;]", word) or not word:
        return '"' + word.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return word


def unit_files(
    unit: str, workflow: Any, root: Path, file: Path, calendars: list[str]
) -> dict[str, str]:
    """The text of ``<unit>.service`` and ``<unit>.timer`` that run ``file`` on ``calendars``."""
    exec_start = " ".join(_unit_quote(w) for w in [*workflow_command(), "run", str(file)])
    what = f"jupyter-workflows: {workflow.name} ({file})".replace("%", "%%")
    service = (
        f"[Unit]\nDescription={what}\n\n"
        f"[Service]\nType=oneshot\nWorkingDirectory={str(root).replace('%', '%%')}\n"
        f"ExecStart={exec_start}\n"
    )
    timer = (
        f"[Unit]\nDescription=Schedule of {what}\n\n[Timer]\n"
        + "".join(f"OnCalendar={spec}\n" for spec in calendars)
        + f"Persistent=true\nUnit={unit}.service\n\n[Install]\nWantedBy=timers.target\n"
    )
    return {f"{unit}.service": service, f"{unit}.timer": timer}


def check_calendar(spec: str) -> str | None:
    """Why ``spec`` is not an OnCalendar= value (asks systemd-analyze when it is installed)."""
    import shutil
    import subprocess

    if not spec.strip() or "\n" in spec:
        return "it is empty or spans lines"
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        return None  # nothing here can check it; systemd will when the timer loads
    done = subprocess.run([analyze, "calendar", spec], capture_output=True, text=True)
    return None if done.returncode == 0 else done.stderr.strip() or "systemd-analyze refused it"


@click.command()
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--on-calendar", "calendars", multiple=True, required=True,
              help='systemd calendar syntax: "daily", "*-*-* 02:00:00", ...')  # fmt: skip
@click.option("--output", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where to write the units (default: workflows/systemd).")  # fmt: skip
@click.option("--name", "unit", default=None, help="Unit name (default: workflow-<name>).")
@click.option("--force", is_flag=True, help="Overwrite existing unit files.")
@click.option("--dry-run", is_flag=True, help="Print the units; write nothing.")
@click.pass_obj
@friendly_errors
def systemd(root: Path, file: Path, calendars: tuple[str, ...], output: Path | None,
            unit: str | None, force: bool, dry_run: bool) -> None:  # fmt: skip
    """Write a systemd service and timer that run FILE on a calendar."""
    for spec in calendars:
        problem = check_calendar(spec)
        if problem:
            _fail(f"invalid --on-calendar '{spec}': {problem}")
    path, workflow = _workflow_file(root, file)
    unit = unit or f"workflow-{_safe_name(workflow.name)}"
    if not re.fullmatch(r"[A-Za-z0-9:_.\\-]+", unit):
        _fail(f"invalid unit name '{unit}': use letters, digits, ':', '_', '.', '-'")
    files = unit_files(unit, workflow, root, path, list(calendars))
    directory = (output or root / "workflows" / "systemd").absolute()
    if dry_run:
        for name, text in files.items():
            click.echo(f"# {directory / name}\n{text}")
        return
    existing = [name for name in files if (directory / name).exists()]
    if existing and not force:
        _fail(f"{directory / existing[0]} already exists; use --force to overwrite it")
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (directory / name).write_text(text)
        click.echo(f"wrote {directory / name}")
    _print_next_steps(directory, unit)


def _print_next_steps(directory: Path, unit: str) -> None:
    import shlex

    units = " ".join(shlex.quote(str(directory / f"{unit}.{k}")) for k in ("service", "timer"))
    click.echo(
        "to enable it for your user:\n"
        f"  mkdir -p ~/.config/systemd/user && cp {units} ~/.config/systemd/user/\n"
        f"  systemctl --user daemon-reload && systemctl --user enable --now {unit}.timer\n"
        "  (runs only while you are logged in unless: loginctl enable-linger $USER)\n"
        "system-wide: copy them to /etc/systemd/system/, add User=<account> under [Service], "
        "and use systemctl without --user"
    )
