"""The fields of a ``shell`` task: apart from the type (``shell.py``), so that running a shell
task imports no pydantic (``tasks.base.ModelAt``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from ..definition.model import TaskBase


class ShellTask(TaskBase):
    type: Literal["shell"]
    command: str
    shell: str = Field("/bin/sh", description="The shell that runs the command.")
