"""``conditional``, ``parallel`` and ``loop``: tasks made of tasks.

Children run through the engine like any task (``ctx.run_child``), so they get retries,
timeouts, events, records and live output, and appear under their parent in the history.
Composite types hold no max_parallel slot themselves: their children do.

Child ids: a conditional's branches are ``ID.then`` / ``ID.else``, a parallel task's children
keep their own ids (``ID.N`` when they have none), and loop iterations are ``ID[N]``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..base import DeferredTaskType, ModelAt, models_from

if TYPE_CHECKING:
    from .model import ConditionalTask, LoopTask, ParallelTask  # noqa: F401

__getattr__ = models_from(
    "jupyter_workflows.tasks.composite.model", "ConditionalTask", "ParallelTask", "LoopTask"
)


class ConditionalType(DeferredTaskType):
    name = "conditional"
    model = ModelAt("jupyter_workflows.tasks.composite.model:ConditionalTask")
    uses_slot = False
    remote = False
    implementation = "jupyter_workflows.tasks.composite.runner:ConditionalRunner"


class ParallelType(DeferredTaskType):
    name = "parallel"
    model = ModelAt("jupyter_workflows.tasks.composite.model:ParallelTask")
    uses_slot = False
    remote = False
    implementation = "jupyter_workflows.tasks.composite.runner:ParallelRunner"


class LoopType(DeferredTaskType):
    name = "loop"
    model = ModelAt("jupyter_workflows.tasks.composite.model:LoopTask")
    uses_slot = False
    remote = False
    implementation = "jupyter_workflows.tasks.composite.runner:LoopRunner"
