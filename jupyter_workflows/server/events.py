"""``GET executions/{id}/events``: a run's live state as server-sent events.

Each message is ``event: <name>`` and ``data: <one line of JSON>``:

``snapshot``
    The execution as it stands, exactly as ``GET executions/{id}`` returns it; always first.
``tasks``
    A list of task records, each the complete entry of the detail's ``tasks`` (status,
    attempts, exit_code, result, outputs, error, parent, progress, log_tail...) as
    ``Execution.apply`` folded it. A client replaces its entry of that id with it, or appends
    it when the id is new (a composite's child). A task is in at most one ``tasks`` message per
    flush, whatever number of events changed it.
``run``
    The run's own fields: the detail without ``tasks`` (status, started_at, ended_at,
    duration, error, output_notebooks...). Sent when the run starts and when it ends.
``output``
    One line of a task's log: ``{"task_id", "attempt", "stream", "line", "at"}``.

Streams flush at most every ``batch_interval`` seconds, so a run of hundreds of tasks sends
each changed task once per flush rather than one message per event. The stream ends once the
run is over: after a ``run`` (or, following a run of another process, a ``snapshot``) whose
status is terminal; a run that already ended gets its snapshot only. A run started by another
process (cron, the CLI) has no live state here: its stream sends a new snapshot whenever the
store shows a change. A client that falls more than ``live.MAX_PENDING`` lines behind is cut
off (a comment says so) and starts again from a snapshot. A comment line every ``keep_alive``
seconds keeps proxies from closing a quiet stream.
"""

from __future__ import annotations

import asyncio
from typing import Any

from jupyter_server.auth.decorator import authorized
from tornado import web
from tornado.iostream import StreamClosedError

from ..errors import WorkflowError
from ..execution.states import State
from .base import WorkflowsHandler, answers, to_json
from .live import Subscriber

KEEP_ALIVE = b": keep-alive\n\n"


def sse_message(kind: str, data: Any) -> bytes:
    """One server-sent event: ``event: kind`` and its data as one line of JSON."""
    return f"event: {kind}\ndata: {to_json(data, compact=True)}\n\n".encode()


class EventsHandler(WorkflowsHandler):
    keep_alive = 15.0  # seconds between comment lines when nothing happens
    poll_interval = 1.0  # seconds between store reads for a run of another process
    batch_interval = 0.1  # least seconds between two flushes of a live run's changes

    _subscriber: Subscriber | None = None
    _gone = False

    @web.authenticated
    @authorized
    @answers
    async def get(self, execution_id: str) -> None:
        snapshot, subscriber = await self.service.open_stream(execution_id)
        self._subscriber = subscriber
        self.set_header("Content-Type", "text/event-stream")
        self.set_header("Cache-Control", "no-cache")
        self.set_header("X-Accel-Buffering", "no")  # nginx: do not hold events back
        try:
            self.write(sse_message("snapshot", snapshot))
            await self.flush()
            if subscriber is not None:
                await self._relay(subscriber)
            elif not State(snapshot["status"]).is_terminal:
                await self._poll(snapshot)
        except StreamClosedError:
            return  # the client went away
        finally:
            if subscriber is not None:
                self.service.close_stream(snapshot["id"], subscriber)
        self.finish(set_content_type="text/event-stream")

    async def _relay(self, subscriber: Subscriber) -> None:
        """Send the run's changes until it ends, the client leaves or lags too far behind."""
        while True:
            batch = await subscriber.next_batch(self.keep_alive)
            if subscriber.closed or self._gone:
                return
            if subscriber.overflowed:
                self.write(b": too far behind; reconnect for a new snapshot\n\n")
                return
            if not batch:
                self.write(KEEP_ALIVE)
            for kind, data in batch:
                self.write(sse_message(kind, data))
            await self.flush()
            if any(kind == "run" and State(data["status"]).is_terminal for kind, data in batch):
                return
            # Changes made meanwhile gather in the subscriber: each task goes once per flush.
            await asyncio.sleep(self.batch_interval)

    async def _poll(self, snapshot: dict[str, Any]) -> None:
        """Follow a run of another process through the store until it ends."""
        quiet = 0.0
        while not self._gone:
            await asyncio.sleep(self.poll_interval)
            try:
                current = await self.service.execution(snapshot["id"])
            except WorkflowError as exc:  # removed meanwhile, or the store failed: stop here
                self.write(f": {exc}\n\n".encode())
                return
            if current == snapshot:
                quiet += self.poll_interval
                if quiet >= self.keep_alive:
                    quiet = 0.0
                    self.write(KEEP_ALIVE)
                    await self.flush()
                continue
            quiet, snapshot = 0.0, current
            self.write(sse_message("snapshot", current))
            await self.flush()
            if State(current["status"]).is_terminal:
                return

    def on_connection_close(self) -> None:
        self._gone = True
        if self._subscriber is not None:
            self._subscriber.close()
        super().on_connection_close()
