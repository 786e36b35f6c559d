"""``conditional``, ``parallel`` and ``loop``: tasks made of tasks.

Children run through the engine like any task (``ctx.run_child``), so they get retries,
timeouts, events, records and live output, and appear under their parent in the history.
Composite types hold no max_parallel slot themselves: their children do.

Child ids: a conditional's branches are ``ID.then`` / ``ID.else``, a parallel task's children
keep their own ids (``ID.N`` when they have none), and loop iterations are ``ID[N]``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import Field

from ...definition.model import TASK_ID_PATTERN, Task, TaskBase
from ..base import DeferredTaskType


class ConditionalTask(TaskBase):
    type: Literal["conditional"]
    condition: str
    then: Task
    else_: Task | None = Field(None, alias="else")

    @property
    def gate(self) -> str | None:
        return None


class ParallelTask(TaskBase):
    type: Literal["parallel"]
    tasks: list[Task] = Field(min_length=1)
    wait_for: Literal["all", "any"] = "all"
    max_parallel: int | None = Field(None, ge=1)


class LoopTask(TaskBase):
    type: Literal["loop"]
    items: Union[list[Any], str] = Field(
        description='A list, or an expression giving one (e.g. "${tasks.list.result}").'
    )
    item: Annotated[str, Field(pattern=TASK_ID_PATTERN)] = "item"
    then: Task
    stop_on_failure: bool = False
    max_parallel: int = Field(1, ge=1)


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
