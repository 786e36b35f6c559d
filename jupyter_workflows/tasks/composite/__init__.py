"""``conditional``, ``parallel`` and ``loop``: tasks made of tasks.

Children run through the engine like any task (``ctx.run_child``), so they get retries,
timeouts, events, records and live output, and appear under their parent in the history.
Composite types hold no max_parallel slot themselves: their children do.

Child ids: a conditional's branches are ``ID.then`` / ``ID.else``, a parallel task's children
keep their own ids (``ID.N`` when they have none), and loop iterations are ``ID[N]``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import BeforeValidator, Field, model_validator

from ...definition.model import TASK_ID_PATTERN, Task, TaskBase
from ..base import DeferredTaskType


def shell_by_default(value: Any) -> Any:
    """A child task written without ``type`` but with a ``command`` is a shell task, as in
    the original format."""
    if isinstance(value, dict) and "type" not in value and "command" in value:
        return {"type": "shell", **value}
    return value


def _children_shell_by_default(value: Any) -> Any:
    return [shell_by_default(v) for v in value] if isinstance(value, list) else value


Child = Annotated[Task, BeforeValidator(shell_by_default)]


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
    tasks: Annotated[list[Task], BeforeValidator(_children_shell_by_default)] = Field(
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

    @model_validator(mode="after")
    def _native(self) -> LoopTask:
        if self.then is not None and self.task is not None:
            raise ValueError("set either 'then' or 'task' (its original spelling), not both")
        if self.then is None and self.task is None:
            raise ValueError("missing the task to repeat: 'then' (or 'task')")
        self.then, self.task = self.then or self.task, None
        if self.parallel and "max_parallel" not in self.model_fields_set:
            # every iteration at once; the run's max_parallel still bounds what they start
            self.max_parallel = max(len(self.items), 1) if isinstance(self.items, list) else 1024
        return self

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
