"""Placeholder: replaced by the module's real commands."""

from __future__ import annotations

import click


@click.command()
def schedule() -> None:
    """Not built yet."""
    raise click.ClickException("not built yet")
