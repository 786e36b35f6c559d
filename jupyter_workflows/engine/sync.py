"""One sync facade over the async engine, usable with or without a running event loop.

In a plain process the coroutine runs on a fresh loop in this thread, with SIGINT/SIGTERM
cancelling it (so Ctrl-C records a cancelled run instead of a traceback). Inside a running loop
(a Jupyter kernel) it runs on a loop in a worker thread; a KeyboardInterrupt (kernel interrupt)
in the waiting thread cancels it there.
"""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Callable, Coroutine
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
        return loop.run_until_complete(main)
    finally:
        for sig in handled:
            loop.remove_signal_handler(sig)
        try:
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            loop.close()


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
