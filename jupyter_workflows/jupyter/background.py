"""Workflow runs that go on while the user keeps working: ``%workflow run FILE --background``.

In a Jupyter kernel the run is a task on the kernel's own event loop, so it advances whenever
no cell is busy. Without a running loop (terminal IPython, a plain shell) it runs on a loop of
its own in a daemon thread. Either way the caller gets the same ``BackgroundRun`` handle.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Callable, Generator
from typing import Any

from ..engine.orchestrator import WorkflowOrchestrator
from ..engine.run import WorkflowRun
from ..execution.records import Execution
from .display import ExecutionView

__all__ = ["BackgroundRun", "start_background"]

# asyncio keeps only weak references to tasks: a run nobody holds a handle to must not vanish.
_ACTIVE: set[BackgroundRun] = set()


class BackgroundRun:
    """A run in progress. ``await handle`` (or ``handle.result()`` from another thread) gives
    the ``Execution`` once it ends, cancelled runs included; ``handle.cancel()`` stops it and
    records it as cancelled. ``handle.execution`` is the live record."""

    def __init__(
        self,
        run: WorkflowRun,
        loop: asyncio.AbstractEventLoop,
        task: asyncio.Task[Execution],
        on_done: Callable[[Execution], None] | None = None,
    ):
        self._run = run
        self._loop = loop
        self._task = task
        self._on_done = on_done
        self._thread: threading.Thread | None = None
        self._future: concurrent.futures.Future[Execution] = concurrent.futures.Future()
        # RUNNING: an awaiter that gets cancelled cannot cancel this future (only .cancel()
        # stops the run).
        self._future.set_running_or_notify_cancel()

    @property
    def execution_id(self) -> str:
        return self._run.execution.id

    @property
    def execution(self) -> Execution:
        return self._run.execution

    def done(self) -> bool:
        return self._future.done()

    def cancel(self) -> bool:
        """Ask the run to stop (its processes are stopped, the run recorded as cancelled).

        Returns False when it had already ended. Safe from any thread."""
        if self._future.done():
            return False
        try:
            # Always through the loop's queue, so the run has taken its first step (and
            # emitted RunStarted) before the cancellation reaches it: a run cancelled at once
            # is still recorded, as cancelled.
            self._loop.call_soon_threadsafe(self._task.cancel)
        except RuntimeError:  # the loop has closed: the run just ended
            return False
        return True

    def result(self, timeout: float | None = None) -> Execution:
        """Wait for the end and return the Execution; not from the loop the run is on (it
        could never end): there, ``await`` the handle instead. TimeoutError after ``timeout``."""
        if self._thread is None and _on_thread_of(self._loop):
            raise RuntimeError(
                "this run is on the kernel's event loop: waiting here would block it forever; "
                "use `await handle` instead"
            )
        return self._future.result(timeout)

    def __await__(self) -> Generator[Any, None, Execution]:
        return asyncio.wrap_future(self._future).__await__()

    def _settle(self) -> None:
        """Called once the task has ended (on the run's loop): resolve the handle."""
        if self._future.done():
            return
        task = self._task
        if task.cancelled():
            self._future.set_result(self._run.execution)
        elif task.exception() is not None:
            self._future.set_exception(task.exception())  # type: ignore[arg-type]
        else:
            self._future.set_result(task.result())
        _ACTIVE.discard(self)
        if self._on_done is not None:
            self._on_done(self._run.execution)

    # -- display ------------------------------------------------------------------------------

    def _note(self) -> str:
        if self.done():
            return "background run: ended"
        return "background run in progress: `await` this handle to wait, `.cancel()` to stop"

    def __repr__(self) -> str:
        return ExecutionView(self.execution, note=self._note()).text()

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(repr(self))

    def _repr_html_(self) -> str:
        return ExecutionView(self.execution, note=self._note())._repr_html_()


def start_background(
    orchestrator: WorkflowOrchestrator,
    run: WorkflowRun,
    on_done: Callable[[Execution], None] | None = None,
) -> BackgroundRun:
    """Start a prepared run on the running event loop, or on a loop in a daemon thread when
    there is none; ``on_done(execution)`` is called once it ends (on the run's loop)."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return _start_in_thread(orchestrator, run, on_done)
    task = loop.create_task(orchestrator.run_prepared(run), name=f"workflow {run.execution.id}")
    handle = BackgroundRun(run, loop, task, on_done)
    task.add_done_callback(lambda _task: handle._settle())
    _ACTIVE.add(handle)
    return handle


def _start_in_thread(
    orchestrator: WorkflowOrchestrator,
    run: WorkflowRun,
    on_done: Callable[[Execution], None] | None,
) -> BackgroundRun:
    loop = asyncio.new_event_loop()
    # Created before the thread starts, so the task's first step is queued ahead of any cancel.
    task = loop.create_task(orchestrator.run_prepared(run), name=f"workflow {run.execution.id}")
    handle = BackgroundRun(run, loop, task, on_done)

    def target() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(task)
        except BaseException:  # noqa: S110 - the outcome is read from the task in _settle
            pass
        finally:
            try:
                loop.run_until_complete(loop.shutdown_asyncgens())
            finally:
                loop.close()
                handle._settle()

    handle._thread = threading.Thread(
        target=target, name=f"workflow-{run.execution.id[:8]}", daemon=True
    )
    _ACTIVE.add(handle)
    handle._thread.start()
    return handle


def _on_thread_of(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False
