"""The cyclic garbage collector of a ``workflow`` process: paused while it starts, frozen at exit.

Starting a command is mostly importing modules (click, pydantic, asyncio, the engine) and
building classes that live until the process ends; the collector's passes over them while
they load find nothing to free, and at exit the interpreter's last collections walk every one
of them again. Measured on a one-task ``workflow run`` (240 ms): ~8 ms of passes during the
start and ~25 ms at exit. So the collector is paused from the start of the command until its
work begins (a run's tasks, a server's loop; ``resume``), and at exit the objects still alive
are frozen (``gc.freeze``: left out of every later collection) before the interpreter's last
collections. Nothing is lost: reference counting still frees what is not in a cycle, a paused
collector is resumed whatever happens, and a process that embeds the command (a test's
``CliRunner``) gets its collector back as it was.
"""

from __future__ import annotations

import atexit
import gc

_paused = False
_freeze_registered = False


def pause() -> None:
    """Pause the collector for the start of a command (if it runs at all)."""
    global _paused, _freeze_registered
    if not _freeze_registered:
        atexit.register(gc.freeze)  # the first handler registered runs last, at the very end
        _freeze_registered = True
    if gc.isenabled():
        gc.disable()
        _paused = True


def resume() -> None:
    """The command's work begins: collect cycles again, as a long-running process must."""
    global _paused
    if _paused:
        _paused = False
        gc.enable()
