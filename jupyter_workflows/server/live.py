"""Live runs of this server, sent to event streams as the records ``Execution.apply`` folds.

A ``RunBroadcaster`` is the event sink of one run: it folds each event into its own
``Execution``, the one place events become state, and tells every ``Subscriber`` what the
event changed. A subscriber queues no events: it notes which tasks changed and whether the
run's own fields did, and when its stream flushes it renders their records from the
``Execution`` as they stand (``executions.task_json`` and ``run_json``, the shapes of the REST
detail). A task that changed ten times between two flushes is sent once, and a client only ever
replaces what it holds with what it receives. Output lines are the exception: each is queued as
one small ``output`` message, since sending a whole record per line would be wasteful; a line
alone does not resend its task, so a record's ``log_tail`` is as of the flush that sent it.

Snapshot and subscription happen in one step on the server's loop, the same loop the engine
emits on, so a subscriber neither misses nor repeats an update: whatever changes after its
snapshot is marked for its next flush.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

from ..execution.events import Event, OutputLine, RunEnded, RunStarted
from ..execution.records import Execution
from .executions import execution_json, run_json, task_json

# Output lines queued for one slow client before it is dropped (it starts again from a snapshot).
MAX_PENDING = 10_000


class Subscriber:
    """What one stream has yet to send: output lines in order, and which records changed."""

    def __init__(self, execution: Execution, root: Path, limit: int = MAX_PENDING):
        self._execution = execution
        self._root = root
        self._lines: list[dict[str, Any]] = []
        self._tasks: dict[str, None] = {}  # ids of the changed tasks, in the order first seen
        self._run = False
        self._ready = asyncio.Event()
        self._limit = limit
        self.overflowed = False
        self.closed = False

    def changed(self, event: Event) -> None:
        """Note what ``event`` (already folded into the execution) changed."""
        if self.closed or self.overflowed:
            return
        if isinstance(event, OutputLine):
            if len(self._lines) >= self._limit:
                self.overflowed = True  # too slow: the stream ends, the client starts again
                self._lines.clear()
            else:
                self._lines.append(output_json(event))
        elif isinstance(event, (RunStarted, RunEnded)):
            self._run = True
            if isinstance(event, RunStarted):  # it declares the tasks
                self._tasks.update(dict.fromkeys(spec["id"] for spec in event.tasks))
        else:
            task_id = getattr(event, "task_id", None)
            if task_id is None:
                return
            self._tasks[task_id] = None
        self._ready.set()

    def close(self) -> None:
        """Wake the stream so it ends (the client went away)."""
        self.closed = True
        self._ready.set()

    async def next_batch(self, timeout: float) -> list[tuple[str, Any]]:
        """The messages due, waiting up to ``timeout`` seconds for a change ([] on timeout).

        In order: the ``output`` lines, one ``tasks`` message with the record of every task
        that changed, then ``run`` with the run's fields if they changed (so a run that ended
        is always the last message).
        """
        if not self._pending() and not self.closed and not self.overflowed:
            try:
                await asyncio.wait_for(self._ready.wait(), timeout)
            except asyncio.TimeoutError:
                return []
        self._ready.clear()
        batch: list[tuple[str, Any]] = [("output", line) for line in self._lines]
        if self._tasks:
            tasks = self._execution.tasks
            batch.append(("tasks", [task_json(tasks[task_id]) for task_id in self._tasks]))
        if self._run:
            batch.append(("run", run_json(self._execution, self._root)))
        self._lines, self._tasks, self._run = [], {}, False
        return batch

    def _pending(self) -> bool:
        return bool(self._lines or self._tasks or self._run)


def output_json(event: OutputLine) -> dict[str, Any]:
    """An ``output`` message: one line of a task's log."""
    return {
        "task_id": event.task_id,
        "attempt": event.attempt,
        "stream": event.stream,
        "line": event.line,
        "at": event.at,
    }


class RunBroadcaster:
    """Event sink of one run: its live Execution, and the streams watching it.

    Must be created on the loop the run's engine uses; events emitted from another thread
    are moved onto that loop. ``root`` is the server's root (paths in records are relative
    to it).
    """

    def __init__(self, execution_id: str, workflow: str, root: Path):
        self.execution = Execution(id=execution_id, workflow=workflow)
        self.root = root
        self.ended = False
        self._subscribers: set[Subscriber] = set()
        self._loop = asyncio.get_running_loop()
        self._thread = threading.get_ident()

    def __call__(self, event: Event) -> None:
        if threading.get_ident() != self._thread:
            self._loop.call_soon_threadsafe(self._publish, event)
        else:
            self._publish(event)

    def _publish(self, event: Event) -> None:
        if self.ended:
            return
        self.execution.apply(event)
        for subscriber in self._subscribers:
            subscriber.changed(event)
        if isinstance(event, RunEnded):
            self.ended = True
            self._subscribers.clear()

    def subscribe(self) -> tuple[dict[str, Any], Subscriber | None]:
        """The run as it stands (``execution_json``), and a subscriber for what follows
        (None once it ended)."""
        snapshot = execution_json(self.execution, self.root)
        if self.ended:
            return snapshot, None
        subscriber = Subscriber(self.execution, self.root)
        self._subscribers.add(subscriber)
        return snapshot, subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        self._subscribers.discard(subscriber)

    def finish(self, status: str, error: str | None) -> None:
        """End the streams of a run that stopped without its own ``run_ended`` (cancelled
        while it waited for a slot, or a fault of ours)."""
        if not self.ended:
            self._publish(RunEnded(execution_id=self.execution.id, status=status, error=error))
