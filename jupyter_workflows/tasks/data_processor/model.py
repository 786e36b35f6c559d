"""The fields of a ``data_processor`` task: apart from the type (``__init__.py``), so that
running one imports no pydantic (``tasks.base.ModelAt``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from ...definition.model import Strict, TaskBase


class FileInput(Strict):
    type: Literal["file"] = "file"
    path: str = Field(description="A glob, relative to the project root.")


class Processor(Strict):
    type: Literal["javascript", "python"] = "javascript"
    script: str


class FileOutput(Strict):
    type: Literal["file"] = "file"
    path: str = Field(description="${input} is the input file's name without extension.")


class DataProcessorTask(TaskBase):
    type: Literal["data_processor"]
    input: FileInput
    processor: Processor
    output: FileOutput | None = None
    max_parallel: int = Field(4, ge=1)
