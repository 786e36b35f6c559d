"""The fields of a ``notebook`` task: apart from the type (``__init__.py``), so that running one
imports no pydantic (``tasks.base.ModelAt``)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from ...definition.model import TaskBase


class NotebookTask(TaskBase):
    """Execute a notebook with papermill, keeping the executed copy per execution."""

    type: Literal["notebook"]
    notebook: str = Field(description="Input notebook, relative to the project root.")
    parameters: dict[str, Any] = Field(default_factory=dict)
    kernel: str | None = None
    output: str | None = Field(None, description="Where to write the executed notebook.")
    reuse_kernel: bool = Field(
        False,
        description="Share one kernel (per kernel name and cwd) between notebook tasks, its "
        "namespace reset between them: much faster, but imported modules and process state "
        "carry over.",
    )
