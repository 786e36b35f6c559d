"""A click group that imports a subcommand's module only when that command is used.

``workflow --help`` lists every command from a static table (name -> module, attribute, short
help), so listing them imports none; ``workflow run`` imports only what ``run`` needs.
tests/cli/test_lazy.py checks that the table says what the real commands say.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import click


class LazyCommand(NamedTuple):
    """Where a command lives and the short help ``--help`` lists for it."""

    module: str  # absolute, or relative to the group's package (".serve")
    attribute: str
    short_help: str


class LazyGroup(click.Group):
    """A group whose ``lazy`` commands are imported on first use.

    Commands added with ``add_command`` (or ``@group.command``) behave as in any group.
    """

    def __init__(
        self, *args: Any, lazy: dict[str, LazyCommand] | None = None, package: str = "",
        **kwargs: Any,
    ) -> None:  # fmt: skip
        super().__init__(*args, **kwargs)
        self.lazy = dict(lazy or {})
        self.package = package

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in self.lazy:
            self.add_command(self.load(cmd_name), cmd_name)
        return self.commands.get(cmd_name)

    def load(self, name: str) -> click.Command:
        """Import the command ``name`` of the table (a programming error if it is not one)."""
        entry = self.lazy[name]
        module = self.package + entry.module if entry.module.startswith(".") else entry.module
        # __import__ rather than importlib.import_module: `python -X importtime` reports only
        # imports made through the import statement's path, and start-up is profiled with it.
        command = getattr(__import__(module, fromlist=["_"]), entry.attribute)
        if not isinstance(command, click.Command):
            raise TypeError(f"{entry.module}:{entry.attribute} is not a click command")
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The command list of ``--help``: the table's short help, importing nothing."""
        names = self.list_commands(ctx)
        if not names:
            return
        limit = formatter.width - 6 - max(len(name) for name in names)
        rows = []
        for name in names:
            if name in self.commands:
                command = self.commands[name]
                if command.hidden:
                    continue
                rows.append((name, command.get_short_help_str(limit)))
            else:
                # Shortened as click shortens a command's own help (the same public method).
                stand_in = click.Command(name, help=self.lazy[name].short_help)
                rows.append((name, stand_in.get_short_help_str(limit)))
        with formatter.section("Commands"):
            formatter.write_dl(rows)
