"""How a ``workflow`` process ends once its command is done: without tearing itself down.

After the last atexit handler, the interpreter tears itself down, module by module, before
the process exits: ~5 ms of a one-task ``workflow run``, spent on memory that the kernel takes
back at once anyway. So, as mypy does, the ``workflow`` process leaves with ``os._exit`` once
all that a normal exit does and that can matter is done: the atexit handlers have run
(plugins', logging's, multiprocessing's, ours) and the standard streams are flushed. It leaves
the normal way while another thread still works (a normal exit waits for it). Only the program
itself comes here (the group called with no arguments); a command run inside another process
with its own arguments (a test's ``CliRunner``, a script, a notebook) never does.

Objects still alive are not finalised, which Python never promises at exit (and which the
collector's freeze at exit, collector.py, already skipped for most of them): a file left open
with unflushed writes would lose them. What we write is never left so: the journal is written
with ``os.write``, stores and outputs are closed by the commands that open them.
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
from typing import NoReturn

# What the interpreter exits with when flushing stdout fails at exit.
_FLUSH_FAILED = 120


def leave(code: object) -> None | NoReturn:
    """End the process with ``code`` (a ``SystemExit`` code) at once, if nothing else is
    running; return (for a normal exit) if a thread other than the main one still is."""
    if any(not t.daemon and t is not threading.main_thread() for t in threading.enumerate()):
        return None
    status = _status(code)
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):
            if stream in (sys.stdout, sys.__stdout__) and status == 0:
                status = _FLUSH_FAILED
    os._exit(status)


def _status(code: object) -> int:
    """The exit status of ``sys.exit(code)``, printing a message as the interpreter would."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    try:
        print(code, file=sys.stderr)
    except (OSError, ValueError):
        pass
    return 1
