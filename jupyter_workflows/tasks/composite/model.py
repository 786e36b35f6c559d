"""The fields of ``conditional``, ``parallel`` and ``loop`` tasks: apart from the types
(``__init__.py``), so that running them imports no pydantic (``tasks.base.ModelAt``); their
methods are in ``definition/behaviour.py``."""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import BeforeValidator, Field

from ...definition import field_checks
from ...definition.behaviour import ConditionalBehaviour, LoopBehaviour
from ...definition.model import TASK_ID_PATTERN, Task, TaskBase, model_rule

Child = Annotated[Task, BeforeValidator(field_checks.shell_by_default)]


class ConditionalTask(TaskBase, ConditionalBehaviour):
    type: Literal["conditional"]
    condition: str
    then: Child
    else_: Child | None = Field(None, alias="else")


class ParallelTask(TaskBase):
    type: Literal["parallel"]
    tasks: Annotated[list[Task], BeforeValidator(field_checks.children_shell_by_default)] = Field(
        min_length=1, description="The children; one without 'type' but with 'command' is shell."
    )
    wait_for: Literal["all", "any", "first"] = Field(
        "all",
        description="all: every child must succeed; any: the first success wins; first: the "
        "first child to end decides. The children still running then are cancelled.",
    )
    max_parallel: int | None = Field(None, ge=1)


class LoopTask(TaskBase, LoopBehaviour):
    type: Literal["loop"]
    items: Union[list[Any], str] = Field(
        description='A list, or an expression giving one (e.g. "${tasks.list.result}").'
    )
    item: Annotated[str, Field(pattern=TASK_ID_PATTERN)] = "item"
    then: Child | None = Field(None, description="The task run for each item.")
    task: Child | None = Field(None, description="The original format's name for 'then'.")
    stop_on_failure: bool = False
    max_parallel: int = Field(1, ge=1)
    parallel: bool | None = Field(
        None,
        description="For a loop: true runs every iteration at once (max_parallel: the number "
        "of items), false one after the other.",
    )

    _native = model_rule(field_checks.loop_body)
