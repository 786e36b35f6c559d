"""The fields of a ``python`` task: apart from the type (``python.py``), so that running one
imports no pydantic (``tasks.base.ModelAt``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from ..definition import field_checks
from ..definition.model import TaskBase, model_rule


class PythonTask(TaskBase):
    type: Literal["python"]
    script: str | None = None
    code: str | None = None
    args: list[str] = Field(default_factory=list)

    _script_or_code = model_rule(field_checks.script_or_code)
