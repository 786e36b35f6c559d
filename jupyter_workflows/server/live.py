"""Live events of the runs this server started, fanned out to server-sent-event streams.

A ``RunBroadcaster`` is the event sink of one run: it folds each event into its own
``Execution`` (the snapshot a late subscriber starts from) and hands the event to every
``Subscriber``. Snapshot and subscription happen in one step on the server's loop, the same
loop the engine emits on, so a subscriber neither misses nor repeats an event.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections import deque
from typing import Any

from ..execution.events import Event, RunEnded
from ..execution.records import Execution

# Events queued for one slow client before it is dropped (it reconnects and gets a snapshot).
MAX_PENDING = 10_000


class Subscriber:
    """The events one stream has yet to send."""

    def __init__(self, limit: int = MAX_PENDING):
        self._items: deque[tuple[str, dict[str, Any]]] = deque()
        self._ready = asyncio.Event()
        self._limit = limit
        self.overflowed = False
        self.closed = False

    def put(self, kind: str, data: dict[str, Any]) -> None:
        if self.closed or self.overflowed:
            return
        if len(self._items) >= self._limit:
            self.overflowed = True  # too slow: the stream ends, the client starts again
            self._items.clear()
        else:
            self._items.append((kind, data))
        self._ready.set()

    def close(self) -> None:
        """Wake the stream so it ends (the client went away)."""
        self.closed = True
        self._ready.set()

    async def next_batch(self, timeout: float) -> list[tuple[str, dict[str, Any]]]:
        """Every pending event, waiting up to ``timeout`` seconds for one ([] on timeout)."""
        if not self._items and not self.closed and not self.overflowed:
            try:
                await asyncio.wait_for(self._ready.wait(), timeout)
            except asyncio.TimeoutError:
                return []
        self._ready.clear()
        batch = list(self._items)
        self._items.clear()
        return batch


class RunBroadcaster:
    """Event sink of one run: its live Execution, and the streams watching it.

    Must be created on the loop the run's engine uses; events emitted from another thread
    are moved onto that loop.
    """

    def __init__(self, execution_id: str, workflow: str):
        self.execution = Execution(id=execution_id, workflow=workflow)
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
        data = event.to_dict()
        for subscriber in self._subscribers:
            subscriber.put(event.kind, data)
        if isinstance(event, RunEnded):
            self.ended = True
            self._subscribers.clear()

    def subscribe(self) -> tuple[Execution, Subscriber | None]:
        """The run as it stands, and a subscriber for what follows (None once it ended)."""
        if self.ended:
            return self.execution, None
        subscriber = Subscriber()
        self._subscribers.add(subscriber)
        return self.execution, subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        self._subscribers.discard(subscriber)

    def finish(self, status: str, error: str | None) -> None:
        """End the streams of a run that stopped without its own ``run_ended`` (cancelled
        while it waited for a slot, or a fault of ours)."""
        if not self.ended:
            self._publish(RunEnded(execution_id=self.execution.id, status=status, error=error))


def sse_message(kind: str, data: Any) -> bytes:
    """One server-sent event: ``event: kind`` and its data as one line of JSON."""
    payload = json.dumps(data, default=str, separators=(",", ":"))
    return f"event: {kind}\ndata: {payload}\n\n".encode()


KEEP_ALIVE = b": keep-alive\n\n"
