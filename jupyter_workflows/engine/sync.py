"""One sync facade over the async engine, usable with or without a running event loop.

In a plain process the coroutine runs on a fresh loop in this thread, with SIGINT/SIGTERM
cancelling it (so Ctrl-C records a cancelled run instead of a traceback). Inside a running loop
(a Jupyter kernel) it runs on a loop in a worker thread; a KeyboardInterrupt (kernel interrupt)
in the waiting thread cancels it there.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import threading
import warnings
from collections.abc import Callable, Coroutine, Iterator
from typing import Any, TypeVar

T = TypeVar("T")


def run_sync(make: Callable[[], Coroutine[Any, Any, T]]) -> T:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return _run_here(make)
    return _run_in_thread(make)


def _run_here(make: Callable[[], Coroutine[Any, Any, T]]) -> T:
    loop = asyncio.new_event_loop()
    main = loop.create_task(make())
    handled: list[signal.Signals] = []
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, main.cancel)
                handled.append(sig)
            except (ValueError, RuntimeError, NotImplementedError):
                pass
    try:
        with _child_processes_waited_in(loop):
            return loop.run_until_complete(main)
    finally:
        for sig in handled:
            loop.remove_signal_handler(sig)
        try:
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            loop.close()


@contextlib.contextmanager
def _child_processes_waited_in(loop: asyncio.AbstractEventLoop) -> Iterator[None]:
    """Before Python 3.12, asyncio waits for each child process on a thread of its own
    (ThreadedChildWatcher): a thread started, and handed over to, for every task's process,
    ~0.1 ms each at two cores. Where the kernel has pidfds (Linux 5.3+), ``loop`` waits on the
    process's pidfd instead, as asyncio itself does from 3.12. Only for this loop's run."""
    if sys.version_info >= (3, 12) or not _pidfds_work():
        yield
        return
    with warnings.catch_warnings():  # the watcher API is deprecated from 3.12, unused there
        warnings.simplefilter("ignore", DeprecationWarning)
        before = asyncio.get_child_watcher()
        watcher = asyncio.PidfdChildWatcher()
        watcher.attach_loop(loop)
        asyncio.set_child_watcher(watcher)
    try:
        yield
    finally:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            asyncio.set_child_watcher(before)
            watcher.close()


def _pidfds_work() -> bool:
    try:
        os.close(os.pidfd_open(os.getpid()))
    except (AttributeError, OSError):  # not Linux, an old kernel, or a sandbox refusing it
        return False
    return True


def _run_in_thread(make: Callable[[], Coroutine[Any, Any, T]]) -> T:
    box: dict[str, Any] = {}
    ready = threading.Event()
    finished = threading.Event()

    def target() -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        box["loop"], box["task"] = loop, loop.create_task(make())
        ready.set()
        try:
            box["value"] = loop.run_until_complete(box["task"])
        except BaseException as exc:  # carried to the caller's thread
            box["error"] = exc
        finally:
            loop.close()
            finished.set()

    worker = threading.Thread(target=target, name="jupyter-workflows-run", daemon=True)
    worker.start()
    # An Event, not Thread.join: a KeyboardInterrupt raised inside Thread.join (CPython < 3.13)
    # can mark the still-running thread as stopped, and the next join then returns at once,
    # before the cancelled run has been recorded.
    try:
        while not finished.wait(0.1):  # short waits so a KeyboardInterrupt reaches this thread
            pass
    except KeyboardInterrupt:
        ready.wait()
        box["loop"].call_soon_threadsafe(box["task"].cancel)
        finished.wait()
    if "error" in box:
        raise box["error"]
    return box["value"]  # type: ignore[no-any-return]
