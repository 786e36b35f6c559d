"""``GET executions/{id}/events``: a run's live events as server-sent events.

First ``event: snapshot`` with the execution as it stands, then each engine event as
``event: <kind>`` / ``data: <event JSON>``, ending after ``run_ended``; a run that already
ended gets its snapshot only. A run started by another process (cron, the CLI) has no live
events here: its stream sends a new snapshot whenever the store shows a change, then
``run_ended``. A comment line every ``keep_alive`` seconds keeps proxies from closing it.
"""

from __future__ import annotations

import asyncio
from typing import Any

from jupyter_server.auth.decorator import authorized
from tornado import web
from tornado.iostream import StreamClosedError

from ..errors import WorkflowError
from ..execution.states import State
from .base import WorkflowsHandler, answers
from .live import KEEP_ALIVE, Subscriber, sse_message


class EventsHandler(WorkflowsHandler):
    keep_alive = 15.0  # seconds between comment lines when nothing happens
    poll_interval = 1.0  # seconds between store reads for a run of another process

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
        """Send the run's events until it ends, the client leaves or lags too far behind."""
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
            if any(kind == "run_ended" for kind, _ in batch):
                return

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
            if State(current["status"]).is_terminal:
                ended = {
                    "kind": "run_ended",
                    "execution_id": current["id"],
                    "at": current["ended_at"],
                    "status": current["status"],
                    "error": current["error"],
                }
                self.write(sse_message("run_ended", ended))
                await self.flush()
                return
            await self.flush()

    def on_connection_close(self) -> None:
        self._gone = True
        if self._subscriber is not None:
            self._subscriber.close()
        super().on_connection_close()
