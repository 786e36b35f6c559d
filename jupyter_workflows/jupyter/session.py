"""Workflows a kernel session knows by name: ``%%workflow --name NAME`` registers, ``%workflow
run NAME`` runs.

One registry per IPython shell (the magics instance holds it), so it lives as long as the
kernel. Imports nothing heavy: the models arrive already validated.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..definition.model import Workflow


class Session:
    """The workflows registered in one kernel, by the name given with ``--name``."""

    def __init__(self) -> None:
        self._workflows: dict[str, Workflow] = {}

    def register(self, name: str, workflow: Workflow) -> None:
        """Remember ``workflow`` under ``name`` (a later cell with the same name replaces it)."""
        self._workflows[name] = workflow

    def get(self, name: str) -> Workflow | None:
        return self._workflows.get(name)

    def names(self) -> list[str]:
        return sorted(self._workflows)

    def unknown(self, name: str) -> str:
        """What to say when ``name`` is neither a registered workflow nor a file."""
        names = self.names()
        known = (
            f"registered in this session: {', '.join(names)}"
            if names
            else "none is registered in this session"
        )
        return (
            f"no workflow named '{name}' ({known}; a cell '%%workflow --name NAME' registers one)"
        )
