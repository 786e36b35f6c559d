"""Workflow runs that go on while the user keeps working: ``%workflow run FILE --background``.

In a Jupyter kernel the run is a task on the kernel's own event loop, so it advances whenever
no cell is busy. Without a running loop (terminal IPython, a plain shell) it runs on a loop of
its own in a daemon thread. Either way the caller gets the same ``BackgroundRun`` handle.

The handle tells the truth as the run goes: its repr is read from the live record each time,
and where it is displayed in a notebook that output is refreshed as tasks end and once more at
the run's end (``update_display_data``), so a saved notebook shows how the run ended, not how
it was when the cell returned. ``await handle`` gives what a foreground run gives: the rich
``ExecutionView``, and ``WorkflowFailed`` when the run failed (unless ``raise_on_failure`` is
off, ``--no-raise``).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import sys
import threading
import time
from collections.abc import Callable, Generator
from typing import Any

from ..engine.orchestrator import WorkflowOrchestrator
from ..engine.run import WorkflowRun
from ..errors import WorkflowFailed
from ..execution.events import Event, RunStarted, TaskEnded
from ..execution.records import Execution
from ..execution.states import State
from .display import ExecutionView

__all__ = ["BackgroundRun", "start_background"]

# asyncio keeps only weak references to tasks: a run nobody holds a handle to must not vanish.
_ACTIVE: set[BackgroundRun] = set()
REFRESH = 0.5  # seconds between refreshes of the handle's displayed outputs while it runs


class BackgroundRun:
    """A run in progress. ``await handle`` (or ``handle.result()`` from another thread) gives
    the run's ``ExecutionView`` once it ends (``.execution``, and the record's attributes
    through it), cancelled runs included; a failed run raises ``WorkflowFailed`` instead when
    ``raise_on_failure``. ``handle.cancel()`` stops it and records it as cancelled.
    ``handle.execution`` is the live record."""

    def __init__(
        self,
        run: WorkflowRun,
        loop: asyncio.AbstractEventLoop,
        task: asyncio.Task[Execution],
        on_done: Callable[[Execution], None] | None = None,
        *,
        raise_on_failure: bool = False,
    ):
        self._run = run
        self._loop = loop
        self._task = task
        self._on_done = on_done
        self._raise = raise_on_failure
        self._view: ExecutionView | None = None
        self._displays: list[Any] = []  # IPython DisplayHandles showing this handle
        self._shown_at = float("-inf")
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

    def result(self, timeout: float | None = None) -> ExecutionView:
        """Wait for the end and return what ``await`` does; not from the loop the run is on
        (it could never end): there, ``await`` the handle instead. TimeoutError after
        ``timeout``; WorkflowFailed as ``await`` raises it."""
        if self._thread is None and _on_thread_of(self._loop):
            raise RuntimeError(
                "this run is on the kernel's event loop: waiting here would block it forever; "
                "use `await handle` instead"
            )
        return self._outcome(self._future.result(timeout))

    def __await__(self) -> Generator[Any, None, ExecutionView]:
        return self._wait().__await__()

    async def _wait(self) -> ExecutionView:
        execution = await asyncio.wrap_future(self._future)
        # Once more from here: in a kernel, output messages belong to the cell that sends them
        # (ipykernel keeps the parent in a context variable, which the run's task copied from
        # the cell that started it); nbclient and papermill keep only the current cell's.
        self._refresh(force=True)
        return self._outcome(execution)

    def _outcome(self, execution: Execution) -> ExecutionView:
        """The same object on every call; a failure shown, then raised (as a foreground run
        does). A cancelled run is returned: cancelling was the caller's own doing."""
        if self._view is None or self._view.execution is not execution:
            self._view = ExecutionView(execution)
        failed = execution.status is not State.SUCCEEDED and execution.status is not State.CANCELLED
        if self._raise and failed:
            try:
                execution.raise_for_status()
            except WorkflowFailed as exc:
                _show(self._view)
                raise _message_only(exc) from None
        return self._view

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
        try:
            if self._on_done is not None:
                self._on_done(self._run.execution)
        finally:
            self._refresh(force=True)

    def _event(self, event: Event) -> None:
        """A sink: refresh the displayed outputs as the run starts and as tasks end."""
        if isinstance(event, (RunStarted, TaskEnded)):
            self._refresh()

    def _refresh(self, *, force: bool = False) -> None:
        """Redraw every output showing this handle (at most every REFRESH s, unless forced)."""
        if not self._displays or (not force and time.monotonic() - self._shown_at < REFRESH):
            return
        self._shown_at = time.monotonic()
        bundle = self._bundle()
        for handle in self._displays:
            try:
                handle.update(bundle, raw=True)
            except Exception as exc:  # a dead front-end must not break the run
                print(f"jupyter-workflows: could not refresh the handle's output: {exc}")
                self._displays.clear()
                return

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

    def _bundle(self) -> dict[str, str]:
        return {"text/plain": repr(self), "text/html": self._repr_html_()}

    def _ipython_display_(self) -> None:
        """In a notebook, an output that this handle keeps current; elsewhere, its text."""
        from IPython import get_ipython
        from IPython.display import display

        shell = get_ipython()
        if shell is None or "ipykernel" not in type(shell).__module__:
            print(repr(self))
            return
        handle = display(self._bundle(), raw=True, display_id=True)
        self._displays.append(handle)
        if self.done():  # ended between the bundle and the display: say so
            self._refresh(force=True)


def _show(view: ExecutionView) -> None:
    """Display ``view`` in a notebook or IPython; nothing in plain Python (the error says it)."""
    if "IPython" not in sys.modules:
        return
    from IPython import get_ipython
    from IPython.display import display

    if get_ipython() is not None:
        display(view)


def _message_only(error: Exception) -> Exception:
    """``error``, shown by IPython as its one message: its frames are ours, not the user's."""
    error._render_traceback_ = lambda: [f"{type(error).__name__}: {error}"]  # type: ignore[attr-defined]
    return error


def start_background(
    orchestrator: WorkflowOrchestrator,
    run: WorkflowRun,
    on_done: Callable[[Execution], None] | None = None,
    *,
    raise_on_failure: bool = False,
) -> BackgroundRun:
    """Start a prepared run on the running event loop, or on a loop in a daemon thread when
    there is none; ``on_done(execution)`` is called once it ends (on the run's loop). Pass
    ``handle._event`` the run's events (a sink) to keep its displayed outputs current."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return _start_in_thread(orchestrator, run, on_done, raise_on_failure)
    task = loop.create_task(orchestrator.run_prepared(run), name=f"workflow {run.execution.id}")
    handle = BackgroundRun(run, loop, task, on_done, raise_on_failure=raise_on_failure)
    task.add_done_callback(lambda _task: handle._settle())
    _ACTIVE.add(handle)
    return handle


def _start_in_thread(
    orchestrator: WorkflowOrchestrator,
    run: WorkflowRun,
    on_done: Callable[[Execution], None] | None,
    raise_on_failure: bool,
) -> BackgroundRun:
    loop = asyncio.new_event_loop()
    # Created before the thread starts, so the task's first step is queued ahead of any cancel.
    task = loop.create_task(orchestrator.run_prepared(run), name=f"workflow {run.execution.id}")
    handle = BackgroundRun(run, loop, task, on_done, raise_on_failure=raise_on_failure)

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
