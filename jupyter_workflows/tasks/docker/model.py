"""The fields of a ``docker`` task: apart from the type (``__init__.py``), so that running one
imports no pydantic (``tasks.base.ModelAt``)."""

from __future__ import annotations

from typing import Literal, Union

from pydantic import Field

from ...definition import field_checks
from ...definition.model import EnvMap, Strict, TaskBase, model_rule


class DockerFields(Strict):
    """What a docker task builds or runs."""

    dockerfile: str | None = None
    context: str | None = None
    tags: list[str] = Field(default_factory=list)
    build_args: EnvMap = Field(default_factory=dict)
    image: str | None = None
    command: Union[str, list[str], None] = None
    volumes: list[str] = Field(default_factory=list)
    working_dir: str | None = None


class DockerTask(TaskBase, DockerFields):
    """Build an image (dockerfile/context/tags) or run a container (image/command), or both."""

    type: Literal["docker"]
    config: DockerFields | None = Field(
        None, description="The same fields wrapped, as the original format writes them."
    )

    _build_or_run = model_rule(field_checks.docker_build_or_run)
