"""``conditional``, ``parallel`` and ``loop``: tasks made of tasks.

Children run through the engine like any task (``ctx.run_child``), so they get retries,
timeouts, events, records and live output, and appear under their parent in the history.
Composite types hold no max_parallel slot themselves: their children do.

Child ids: a conditional's branches are ``ID.then`` / ``ID.else``, a parallel task's children
keep their own ids (``ID.N`` when they have none), and loop iterations are ``ID[N]``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import BeforeValidator, Field

from ...definition import field_checks
from ...definition.model import TASK_ID_PATTERN, Task, TaskBase, model_rule
from ..base import DeferredTaskType

Child = Annotated[Task, BeforeValidator(field_checks.shell_by_default)]


class ConditionalTask(TaskBase):
    type: Literal["conditional"]
    condition: str
    then: Child
    else_: Child | None = Field(None, alias="else")

    @property
    def gate(self) -> str | None:
        return None


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


class LoopTask(TaskBase):
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

    @property
    def body(self) -> TaskBase:
        """The task run for each item."""
        assert self.then is not None  # the validator made sure
        return self.then

    @property
    def exclusive(self) -> bool:
        return False  # a loop's `parallel` is about its iterations, not its siblings


class ConditionalType(DeferredTaskType):
    name = "conditional"
    model = ConditionalTask
    uses_slot = False
    remote = False
    implementation = "jupyter_workflows.tasks.composite.runner:ConditionalRunner"


class ParallelType(DeferredTaskType):
    name = "parallel"
    model = ParallelTask
    uses_slot = False
    remote = False
    implementation = "jupyter_workflows.tasks.composite.runner:ParallelRunner"


class LoopType(DeferredTaskType):
    name = "loop"
    model = LoopTask
    uses_slot = False
    remote = False
    implementation = "jupyter_workflows.tasks.composite.runner:LoopRunner"
