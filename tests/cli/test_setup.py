"""``workflow cron install|list|remove`` and ``workflow systemd`` through the real CLI.

Crontab: this machine may have no ``crontab`` program, so most tests point
``WORKFLOW_CRONTAB`` at FAKE_CRONTAB below, a small stand-in that behaves like Debian's
crontab where the CLI depends on it (``-l``, ``-``, "no crontab for USER", refusing a table
without a final newline or with a malformed line). ``test_the_real_crontab`` runs the same
round trip against the real program when it is installed (and restores the user's table).
Systemd units are checked with ``systemd-analyze verify`` where it exists.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest

from tests.conftest import cli, write_workflow

FAKE_CRONTAB = '''#!{python}
"""Stand-in for crontab(1): the table lives in $FAKE_CRONTAB_FILE."""
import getpass, os, re, sys

table = os.environ["FAKE_CRONTAB_FILE"]
if sys.argv[1:] == ["-l"]:
    if not os.path.exists(table):
        sys.exit(print(f"no crontab for {{getpass.getuser()}}", file=sys.stderr) or 1)
    sys.stdout.write(open(table).read())
elif sys.argv[1:] == ["-"]:
    text = sys.stdin.read()
    if text and not text.endswith("\\n"):
        sys.exit(print("new crontab file is missing newline before EOF, can't install.",
                       file=sys.stderr) or 1)
    for line in text.splitlines():
        ok = (not line.strip() or line.lstrip().startswith("#")
              or re.match(r"^\\w+\\s*=", line) or re.match(r"^@\\w+\\s+\\S", line)
              or re.match(r"^(\\S+\\s+){{5}}\\S", line))
        if not ok:
            sys.exit(print(f"bad line: {{line}}\\nerrors in crontab file, can't install.",
                           file=sys.stderr) or 1)
    open(table, "w").write(text)
else:
    sys.exit(print("usage: crontab [-l | -]", file=sys.stderr) or 1)
'''
MINE = 'MAILTO=""\n# my own jobs\n*/5 * * * * echo mine % percent\n'
NO_ANALYZE = shutil.which("systemd-analyze") is None
ECHO = {"id": "hello", "type": "shell", "command": "pwd > ran-in.txt"}


@pytest.fixture
def fake_crontab(tmp_path: Path) -> dict[str, str]:
    """Environment for the CLI that makes WORKFLOW_CRONTAB the fake, its table in tmp_path."""
    program = tmp_path / "bin" / "crontab"
    program.parent.mkdir()
    program.write_text(FAKE_CRONTAB.format(python=sys.executable))
    program.chmod(program.stat().st_mode | stat.S_IXUSR)
    return {"WORKFLOW_CRONTAB": str(program), "FAKE_CRONTAB_FILE": str(tmp_path / "table")}


def _table(env: dict[str, str]) -> str:
    return Path(env["FAKE_CRONTAB_FILE"]).read_text()


def _workflow(root: Path, name: str = "nightly", **fields) -> Path:
    defs = root / "workflows" / "definitions"
    defs.mkdir(parents=True, exist_ok=True)
    return write_workflow(defs, {"name": name, "tasks": [ECHO], **fields}, f"{name}.json")


def _workflow_bin() -> str:
    return str(Path(sys.executable).absolute().parent / "workflow")


# ------------------------------------------------------------------ cron


def test_cron_dry_run_prints_the_line_and_touches_nothing(project, fake_crontab):
    path = _workflow(project)
    Path(fake_crontab["FAKE_CRONTAB_FILE"]).write_text(MINE)
    shown = cli(project, "cron", "install", "workflows/definitions/nightly.json", "--cron",
                "0  2 * * *", "--dry-run", env=fake_crontab)  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    log = project / "workflows" / ".executions" / "cron" / "nightly.log"
    assert shown.stdout == (
        f"0 2 * * * cd {project} && {_workflow_bin()} run --timestamps {path} >> {log} 2>&1 "
        f"# jupyter-workflows: {path}\n"
    )
    assert _table(fake_crontab) == MINE
    assert not log.parent.exists()
    # Nothing is read or written: a dry run needs no crontab program at all.
    missing = cli(project, "cron", "install", str(path), "--cron", "@daily", "--dry-run",
                  env={"WORKFLOW_CRONTAB": "/nonexistent/crontab"})  # fmt: skip
    assert missing.returncode == 0 and missing.stdout.startswith("@daily cd ")


def test_cron_install_takes_the_workflows_own_schedule(project, fake_crontab):
    trigger = {"type": "schedule", "config": {"schedule": "15 3 * * 1"}}
    path = _workflow(project, trigger=trigger)
    shown = cli(project, "cron", "install", str(path), "--dry-run", env=fake_crontab)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.startswith("15 3 * * 1 cd ")
    given = cli(project, "cron", "install", str(path), "--cron", "@daily", "--dry-run")
    assert given.stdout.startswith("@daily cd ")  # --cron still wins
    zoned = _workflow(project, "zoned", trigger={
        "type": "cron", "config": {"schedule": "0 6 * * *", "timezone": "Asia/Tokyo"}})  # fmt: skip
    warned = cli(project, "cron", "install", str(zoned), "--dry-run")
    assert warned.returncode == 0 and "'Asia/Tokyo' does not reach the crontab" in warned.stderr
    manual = _workflow(project, "by-hand")
    refused = cli(project, "cron", "install", str(manual), "--dry-run")
    assert refused.returncode == 2
    assert f"{manual} has no trigger, so no schedule of its own: give one with --cron" in (
        refused.stderr
    )


def test_cron_install_list_remove_touch_only_our_lines(project, fake_crontab):
    nightly, hourly = _workflow(project), _workflow(project, "hourly")
    Path(fake_crontab["FAKE_CRONTAB_FILE"]).write_text(MINE)

    def run(*args: str):
        return cli(project, "cron", *args, env=fake_crontab)

    added = run("install", str(nightly), "--cron", "0 2 * * *")
    assert added.returncode == 0, added.stderr
    assert added.stdout.startswith("added crontab line:\n0 2 * * * cd ")
    assert (project / "workflows" / ".executions" / "cron").is_dir()  # ">>" needs the folder
    replaced = run("install", "workflows/definitions/nightly.json", "--cron", "30 3 * * mon-fri")
    assert replaced.stdout.startswith("replaced crontab line:\n30 3 * * mon-fri cd ")
    assert run("install", str(hourly), "--cron", "@hourly").returncode == 0
    table = _table(fake_crontab)
    assert table.startswith(MINE) and table.count("# jupyter-workflows: ") == 2

    listed = run("list")
    assert listed.stdout == f"30 3 * * mon-fri  {nightly}\n@hourly  {hourly}\n"
    as_json = json.loads(run("list", "--json").stdout)
    assert [(e["file"], e["schedule"]) for e in as_json] == [
        (str(nightly), "30 3 * * mon-fri"), (str(hourly), "@hourly"),
    ]  # fmt: skip

    preview = run("remove", str(nightly), "--dry-run")
    assert preview.stdout.startswith("would remove crontab line:\n30 3 * * mon-fri cd ")
    assert _table(fake_crontab) == table
    removed = run("remove", "workflows/definitions/nightly.json")
    assert removed.returncode == 0 and removed.stdout.startswith("removed crontab line:\n")
    assert _table(fake_crontab) == MINE + as_json[1]["line"] + "\n"
    again = run("remove", str(nightly))
    assert again.returncode == 1
    assert again.stderr.startswith("error: no crontab line of ours runs ")
    nightly.unlink()  # a deleted workflow's line can still be removed
    assert run("remove", str(hourly)).returncode == 0
    assert _table(fake_crontab) == MINE
    assert run("list").stdout == "no workflows in the crontab\n"


def test_cron_list_and_install_with_no_crontab_yet(project, fake_crontab):
    assert cli(project, "cron", "list", env=fake_crontab).stdout == "no workflows in the crontab\n"
    path = _workflow(project)
    assert cli(project, "cron", "install", str(path), "--cron", "@daily",
               env=fake_crontab).returncode == 0  # fmt: skip
    assert _table(fake_crontab).startswith("@daily cd ")


def test_the_installed_line_runs_the_workflow_as_cron_would(tmp_path, fake_crontab):
    """Paths with a space, % and $: the line must survive cron's % rule and the shell."""
    root = tmp_path / "my project %d $HOME"
    root.mkdir()
    path = _workflow(root, "odd")
    assert cli(root, "cron", "install", str(path), "--cron", "* * * * *",
               env=fake_crontab).returncode == 0  # fmt: skip
    line = _table(fake_crontab).strip()
    command = line.split(None, 5)[5].replace("\\%", "%")  # what cron hands to /bin/sh
    cron_env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "SHELL": "/bin/sh",
                "LOGNAME": "cron"}  # fmt: skip
    subprocess.run(["/bin/sh", "-c", command], cwd="/", env=cron_env, check=True, timeout=60)
    log = root / "workflows" / ".executions" / "cron" / "odd.log"
    assert "workflow 'odd' succeeded" in log.read_text()
    for line in log.read_text().splitlines():  # each line says when, for a log read days later
        when, _text = line.split(" ", 1)
        assert datetime.fromisoformat(when).tzinfo is not None, line
    assert (root / "ran-in.txt").read_text() == f"{root}\n"
    history = json.loads(cli(root, "history", "--json").stdout)
    assert [(h["workflow"], h["status"]) for h in history] == [("odd", "succeeded")]


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("0 2 * *", "expected 5 fields"),
        ("0 2 * * * *", "expected 5 fields"),
        ("0 25 * * *", "out of range"),
        ("*/0 * * * *", "step '0'"),
        ("0 2 L * *", "'L' is not a cron field"),
        ("0 2 ? * *", "'?' is not a cron field"),
        ("@sometimes", "expected 5 fields"),
    ],
)
def test_bad_cron_expressions_are_refused(project, fake_crontab, expr, message):
    path = _workflow(project)
    bad = cli(project, "cron", "install", str(path), "--cron", expr, env=fake_crontab)
    assert bad.returncode == 2
    assert bad.stderr.startswith(f"error: invalid --cron '{expr}': ") and message in bad.stderr
    assert not Path(fake_crontab["FAKE_CRONTAB_FILE"]).exists()


def test_a_missing_or_broken_workflow_is_refused_before_the_crontab(project, fake_crontab):
    missing = cli(project, "cron", "install", "nope.json", "--cron", "@daily", env=fake_crontab)
    assert missing.returncode == 2 and "nope.json: no such workflow file" in missing.stderr
    broken = write_workflow(project, {"name": "b", "tasks": [{"id": "x", "type": "shel"}]})
    refused = cli(project, "cron", "install", str(broken), "--cron", "@daily", env=fake_crontab)
    assert refused.returncode == 2 and "task 'x'" in refused.stderr
    assert not Path(fake_crontab["FAKE_CRONTAB_FILE"]).exists()


def test_a_missing_crontab_program_is_named(project):
    path = _workflow(project)
    env = {"WORKFLOW_CRONTAB": "/nonexistent/crontab"}
    failed = cli(project, "cron", "install", str(path), "--cron", "@daily", env=env)
    assert failed.returncode == 1
    assert failed.stderr.startswith("error: '/nonexistent/crontab' not found: install cron")


@pytest.mark.skipif(shutil.which("crontab") is None, reason="no crontab program installed here")
def test_the_real_crontab(project):
    """The same round trip against the real crontab; the user's table is put back after."""
    path = _workflow(project)
    before = subprocess.run(["crontab", "-l"], capture_output=True, text=True)
    try:
        env = {"WORKFLOW_CRONTAB": "crontab"}
        added = cli(project, "cron", "install", str(path), "--cron", "0 0 1 1 *", env=env)
        assert added.returncode == 0, added.stderr
        assert cli(project, "cron", "list", env=env).stdout.endswith(f"0 0 1 1 *  {path}\n")
        assert cli(project, "cron", "remove", str(path), env=env).returncode == 0
        after = subprocess.run(["crontab", "-l"], capture_output=True, text=True)
        assert str(path) not in after.stdout
    finally:
        if before.returncode == 0:
            subprocess.run(["crontab", "-"], input=before.stdout, text=True, check=True)
        else:
            subprocess.run(["crontab", "-r"], capture_output=True)


# ------------------------------------------------------------------ systemd


def _units(directory: Path, unit: str = "workflow-nightly") -> tuple[str, str]:
    return ((directory / f"{unit}.service").read_text(), (directory / f"{unit}.timer").read_text())


def test_systemd_writes_a_service_and_a_timer_with_absolute_paths(project, tmp_path):
    path = _workflow(project)
    out = tmp_path / "units"
    made = cli(project, "systemd", "workflows/definitions/nightly.json", "--on-calendar",
               "*-*-* 02:00:00", "--on-calendar", "Sat 12:00", "--output", str(out))  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert made.stdout.startswith(
        f"wrote {out}/workflow-nightly.service\nwrote {out}/workflow-nightly.timer\n"
    )
    assert "systemctl --user enable --now workflow-nightly.timer" in made.stdout
    service, timer = _units(out)
    assert service == (
        f"[Unit]\nDescription=jupyter-workflows: nightly ({path})\n\n"
        f"[Service]\nType=oneshot\nWorkingDirectory={project}\n"
        f"ExecStart={_workflow_bin()} run {path}\n"
    )
    assert timer == (
        f"[Unit]\nDescription=Schedule of jupyter-workflows: nightly ({path})\n\n"
        "[Timer]\nOnCalendar=*-*-* 02:00:00\nOnCalendar=Sat 12:00\nPersistent=true\n"
        "Unit=workflow-nightly.service\n\n[Install]\nWantedBy=timers.target\n"
    )


@pytest.mark.skipif(NO_ANALYZE, reason="systemd-analyze is not installed: cannot verify units")
@pytest.mark.parametrize("folder", ["plain", "with space %i $USER"])
def test_systemd_units_pass_systemd_analyze_verify(tmp_path, folder):
    root = tmp_path / folder
    root.mkdir()
    _workflow(root)
    made = cli(root, "systemd", "workflows/definitions/nightly.json", "--on-calendar", "daily")
    assert made.returncode == 0, made.stderr
    units = root / "workflows" / "systemd"
    service, _ = _units(units)
    if "%" in folder:  # specifiers and variables stay literal
        assert "%%i $$USER" in service.split("ExecStart=")[1]
    verified = subprocess.run(
        ["systemd-analyze", "verify", *(str(p) for p in sorted(units.iterdir()))],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert verified.returncode == 0, verified.stderr
    assert "workflow-nightly" not in verified.stderr  # no complaint about our units


def test_systemd_dry_run_prints_both_units_and_writes_nothing(project):
    _workflow(project)
    shown = cli(project, "systemd", "workflows/definitions/nightly.json", "--on-calendar",
                "hourly", "--dry-run")  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    units = project / "workflows" / "systemd"
    assert f"# {units}/workflow-nightly.service\n[Unit]" in shown.stdout
    assert f"# {units}/workflow-nightly.timer\n[Unit]" in shown.stdout
    assert "OnCalendar=hourly\nPersistent=true" in shown.stdout
    assert not units.exists()


def test_systemd_refuses_to_overwrite_without_force_and_takes_a_unit_name(project):
    _workflow(project)
    args = ["systemd", "workflows/definitions/nightly.json", "--on-calendar", "daily"]
    assert cli(project, *args).returncode == 0
    units = project / "workflows" / "systemd"
    (units / "workflow-nightly.timer").write_text("edited by hand\n")
    refused = cli(project, *args)
    assert refused.returncode == 2 and "use --force" in refused.stderr
    assert (units / "workflow-nightly.timer").read_text() == "edited by hand\n"
    assert cli(project, *args, "--force").returncode == 0
    assert "Persistent=true" in (units / "workflow-nightly.timer").read_text()
    named = cli(project, *args, "--name", "etl-nightly")
    assert named.returncode == 0 and (units / "etl-nightly.timer").exists()
    bad = cli(project, *args, "--name", "../x")
    assert bad.returncode == 2 and "invalid unit name '../x'" in bad.stderr


@pytest.mark.skipif(NO_ANALYZE, reason="systemd-analyze is not installed: OnCalendar unchecked")
def test_systemd_refuses_a_calendar_systemd_cannot_parse(project):
    _workflow(project)
    bad = cli(project, "systemd", "workflows/definitions/nightly.json", "--on-calendar",
              "every tuesday")  # fmt: skip
    assert bad.returncode == 2
    assert bad.stderr.startswith("error: invalid --on-calendar 'every tuesday': ")
    assert not (project / "workflows" / "systemd").exists()


def test_systemd_refuses_a_broken_workflow(project):
    broken = write_workflow(project, {"name": "b", "tasks": []})
    bad = cli(project, "systemd", str(broken), "--on-calendar", "daily")
    assert bad.returncode == 2 and "tasks" in bad.stderr
    assert not (project / "workflows" / "systemd").exists()


def test_setup_commands_are_registered(project):
    helped = cli(project, "cron", "--help")
    assert helped.returncode == 0
    assert all(word in helped.stdout for word in ("install", "list", "remove"))
    assert os.environ.get("WORKFLOW_CRONTAB") is None  # the tests above never leak it
