"""``parallel: false``: a task that runs alone, never alongside another top-level task.

The run passes every top-level task through one ``SiblingGate``. Ordinary tasks share it; an
exclusive one waits until nothing else holds it and keeps everything else out until it ends.
A waiting exclusive task holds back tasks that become ready after it, so a stream of
ordinary tasks cannot keep it waiting forever.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager


class SiblingGate:
    """Shared by ordinary tasks, held alone by exclusive ones (a readers-writer lock)."""

    def __init__(self) -> None:
        self._holders = 0
        self._alone = False
        self._waiting_alone = 0
        self._changed = asyncio.Event()

    async def _until(self, ready: Callable[[], bool]) -> None:
        while not ready():
            self._changed.clear()  # set() has woken every waiter already; each looks again
            await self._changed.wait()

    @asynccontextmanager
    async def hold(self, exclusive: bool) -> AsyncIterator[None]:
        """Wait for a turn (alone when ``exclusive``), hold it while the body runs."""
        if exclusive:
            self._waiting_alone += 1
            try:
                await self._until(lambda: self._holders == 0 and not self._alone)
            finally:
                self._waiting_alone -= 1
                self._changed.set()
            self._alone = True
        else:
            await self._until(lambda: not self._alone and self._waiting_alone == 0)
            self._holders += 1
        try:
            yield
        finally:
            if exclusive:
                self._alone = False
            else:
                self._holders -= 1
            self._changed.set()
