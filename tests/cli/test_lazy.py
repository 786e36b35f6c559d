"""The ``workflow`` group imports a command's module only when that command is used.

The static table of lazy commands must say what the commands themselves say: ``--help`` built
from it is compared with click's own listing of the imported commands. Real processes tell
which modules a start imported.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import click
import pytest

from jupyter_workflows.cli import LAZY_COMMANDS, main
from jupyter_workflows.cli.lazy import LazyCommand, LazyGroup
from tests.conftest import cli, write_workflow

PACKAGE = "jupyter_workflows.cli"
# What every start of the command imports of the cli package (the group and its helpers).
GROUP_MODULES = {
    PACKAGE,
    f"{PACKAGE}.collector",
    f"{PACKAGE}.common",
    f"{PACKAGE}.exiting",
    f"{PACKAGE}.lazy",
    f"{PACKAGE}.pipes",
}


def cli_modules(project: Path, *args: str) -> set[str]:
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "jupyter_workflows", *args],
        cwd=project, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    names = {line.split("|")[-1].strip() for line in result.stderr.splitlines()}
    return {name for name in names if name == PACKAGE or name.startswith(f"{PACKAGE}.")}


def fresh_group() -> LazyGroup:
    """The ``workflow`` group as a start sees it: no lazy command imported yet."""
    group = LazyGroup("workflow", lazy=LAZY_COMMANDS, package=PACKAGE)
    for name, command in main.commands.items():
        if name not in LAZY_COMMANDS:
            group.add_command(command, name)
    return group


def command_list(group: click.Group, base: bool = False) -> str:
    ctx = click.Context(group, info_name="workflow")
    formatter = ctx.make_formatter()
    if base:  # click's own: imports every command and asks it for its short help
        click.Group.format_commands(group, ctx, formatter)
    else:
        group.format_commands(ctx, formatter)
    return formatter.getvalue()


def test_the_table_says_what_every_command_says() -> None:
    group = fresh_group()
    lazy_listing = command_list(group)
    assert group.commands.keys().isdisjoint(LAZY_COMMANDS)  # the listing imported none
    assert lazy_listing == command_list(group, base=True)
    ctx = click.Context(group, info_name="workflow")
    for name, entry in LAZY_COMMANDS.items():
        command = group.get_command(ctx, name)
        assert command is not None and command.get_short_help_str(10**6) == entry.short_help
    assert all(name in lazy_listing for name in [*LAZY_COMMANDS, "run", "validate"])


def test_help_lists_every_command_and_imports_none_of_their_modules(project: Path) -> None:
    assert cli_modules(project, "--help") == GROUP_MODULES
    listed = cli(project, "--help").stdout.split("Commands:")[1]
    names = [line.split()[0] for line in listed.splitlines() if line.strip()]
    assert names == sorted(main.list_commands(click.Context(main)))
    assert set(LAZY_COMMANDS) < set(names)


def test_a_command_imports_its_own_module_only(project: Path) -> None:
    write_workflow(project, {"name": "one", "tasks": [{"id": "a", "type": "shell",
                                                       "command": "true"}]})  # fmt: skip
    assert cli_modules(project, "validate", "wf.json") == GROUP_MODULES
    assert cli_modules(project, "cache", "ls") == GROUP_MODULES | {f"{PACKAGE}.cache"}
    assert cli_modules(project, "cron", "--help") == GROUP_MODULES | {f"{PACKAGE}.setup"}


def test_an_unknown_command_is_refused(project: Path) -> None:
    result = cli(project, "serv")
    assert result.returncode == 2
    assert "No such command 'serv'" in result.stderr


def test_a_table_entry_that_is_not_a_command_is_a_clear_error() -> None:
    group = LazyGroup("g", lazy={"x": LazyCommand(".common", "json_text", "")}, package=PACKAGE)
    with pytest.raises(TypeError, match="common:json_text is not a click command"):
        group.get_command(click.Context(group), "x")
