"""``GET events``: tells the panel when the list of executions changed, whoever ran them.

A run started elsewhere (the CLI, cron, a notebook) has no live state in this server; what it
leaves is its journal in the store, appended as it goes and moved to ``journals/done/`` once
indexed. So the stream looks at the journals directory every ``poll_interval`` seconds (a
directory listing and a ``stat`` per running run: no DuckDB) and sends one server-sent event,
``event: executions`` with ``data: {"at": <epoch seconds>}``, whenever that changed: a run
started, wrote, ended or was indexed. The client reloads its list then. A comment line every
``keep_alive`` seconds keeps proxies from closing a quiet stream.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

from jupyter_server.auth.decorator import authorized
from tornado import web
from tornado.iostream import StreamClosedError

from .base import WorkflowsHandler, answers
from .events import KEEP_ALIVE, sse_message


def store_signature(store: Path) -> tuple[tuple[str, int, int], ...]:
    """What the journals directory holds now: each journal's name, size and mtime (ns), and
    how many were moved to ``done/``. Empty when there is no store yet."""
    entries: list[tuple[str, int, int]] = []
    for folder in (store / "journals", store / "journals" / "done"):
        try:
            with os.scandir(folder) as found:
                for entry in found:
                    if entry.name.endswith(".jsonl"):
                        info = entry.stat()
                        entries.append((entry.path, info.st_size, info.st_mtime_ns))
        except OSError:  # not there (yet): nothing recorded
            continue
    return tuple(sorted(entries))


class ChangesHandler(WorkflowsHandler):
    poll_interval = 1.0  # seconds between looks at the journals
    keep_alive = 15.0

    _gone = False

    @web.authenticated
    @authorized
    @answers
    async def get(self) -> None:
        store = Path(self.service.store.path)
        self.set_header("Content-Type", "text/event-stream")
        self.set_header("Cache-Control", "no-cache")
        self.set_header("X-Accel-Buffering", "no")
        seen = store_signature(store)
        quiet = 0.0
        try:
            self.write(b": watching the executions\n\n")
            await self.flush()
            while not self._gone:
                await asyncio.sleep(self.poll_interval)
                now = store_signature(store)
                if now != seen:
                    seen, quiet = now, 0.0
                    self.write(sse_message("executions", {"at": time.time()}))
                    await self.flush()
                    continue
                quiet += self.poll_interval
                if quiet >= self.keep_alive:
                    quiet = 0.0
                    self.write(KEEP_ALIVE)
                    await self.flush()
        except StreamClosedError:
            return
        self.finish(set_content_type="text/event-stream")

    def on_connection_close(self) -> None:
        self._gone = True
        super().on_connection_close()
