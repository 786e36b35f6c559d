"""The fields of a ``javascript`` task: apart from the type (``javascript.py``), so that
running one imports no pydantic (``tasks.base.ModelAt``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from ..definition.model import TaskBase


class JavaScriptTask(TaskBase):
    type: Literal["javascript"]
    script: str
    args: list[str] = Field(default_factory=list)
