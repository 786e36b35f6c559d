"""What the engine asks of a workflow definition beyond its fields, without pydantic.

The models (``model.py``) take their methods from these classes, so code that reads a
definition (the engine) needs the model classes only for type checking, and recognises a
definition with ``isinstance(x, WorkflowBehaviour)`` (or ``TaskBehaviour``): importing
pydantic and building the models is most of what a process that runs one small workflow
would otherwise pay to start.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol


class CacheSettings(Protocol):
    """A task's ``cache:`` settings (``model.Cache``, or its plain form)."""

    inputs: list[str]
    key: str | None
    expire: float | None


# The fields each method reads, declared for type checkers only: a model's own annotations
# are its fields, and pydantic must not meet these on a base that is not a model.


class RetryBehaviour:
    if TYPE_CHECKING:
        delay: float
        backoff: float
        max_delay: float

    def delay_before(self, attempt: int) -> float:
        """Seconds to wait before ``attempt`` (2 = the first retry), without jitter."""
        try:
            return min(self.delay * self.backoff ** max(attempt - 2, 0), self.max_delay)
        except OverflowError:  # backoff ** attempts beyond any float: long past max_delay
            return self.max_delay


class TaskBehaviour:
    if TYPE_CHECKING:
        condition: str | None
        parallel: bool | None
        cache: Any
        on_success: Any
        on_failure: Any

    @property
    def cache_config(self) -> CacheSettings | None:
        """The task's cache settings (``cache: true`` is a cache with no inputs), or None."""
        if self.cache is True:
            return self._default_cache()
        return self.cache or None

    def _default_cache(self) -> CacheSettings:
        raise NotImplementedError  # each form makes its own (a model, a plain object)

    @property
    def gate(self) -> str | None:
        """The condition deciding whether the task runs at all (a conditional's selects a
        branch instead, so it has none)."""
        return self.condition

    @property
    def exclusive(self) -> bool:
        """Whether the task must run with no other top-level task running (``parallel:
        false``)."""
        return self.parallel is False

    def callbacks(self, succeeded: bool) -> list[Any]:
        """The callbacks to run after this task ended so: top-level task ids (text) and inline
        tasks."""
        named: Any = self.on_success if succeeded else self.on_failure
        if named is None:
            return []
        return list(named) if isinstance(named, list) else [named]


class ConditionalBehaviour(TaskBehaviour):
    @property
    def gate(self) -> str | None:
        return None  # its condition picks a branch: the task itself always runs


class LoopBehaviour(TaskBehaviour):
    if TYPE_CHECKING:
        then: Any

    @property
    def body(self) -> Any:
        """The task run for each item."""
        assert self.then is not None  # the model's rule (field_checks.loop_body) made sure
        return self.then

    @property
    def exclusive(self) -> bool:
        return False  # a loop's `parallel` is about its iterations, not its siblings


class WorkflowBehaviour:
    if TYPE_CHECKING:
        tasks: list[Any]

    def task(self, task_id: str) -> Any:
        """The top-level task ``task_id`` (a ``TaskBase``, or its plain form)."""
        for task in self.tasks:
            if task.id == task_id:
                return task
        raise KeyError(task_id)

    def callback_ids(self) -> set[str]:
        """Ids of the top-level tasks named as another top-level task's on_success or
        on_failure: they run only as callbacks, never in the graph."""
        names: set[str] = set()
        for task in self.tasks:
            for outcome in (True, False):
                names.update(c for c in task.callbacks(outcome) if isinstance(c, str))
        return names
