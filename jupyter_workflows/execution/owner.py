"""Who owns a run: the runner's pid, host and process start time, and whether it still lives.

A pid alone is not enough to tell that a runner is alive: pids are reused. The start time of
the process (field 22 of ``/proc/<pid>/stat``, in clock ticks since boot) pins the pid to one
process, so a reused pid does not pass for the runner.
"""

from __future__ import annotations

import os
import socket


def process_start(pid: int) -> str | None:
    """Start time of process ``pid`` as recorded by the kernel, or None where unavailable."""
    fields = _stat_fields(pid)
    return fields[19] if fields is not None and len(fields) > 19 else None


def started_at(pid: int) -> float | None:
    """When process ``pid`` started, in epoch seconds (to the clock tick), or None."""
    start = process_start(pid)
    if start is None:
        return None
    try:
        with open("/proc/stat", "rb") as handle:
            boot = next(int(line.split()[1]) for line in handle if line.startswith(b"btime "))
        ticks = os.sysconf("SC_CLK_TCK")
    except (OSError, StopIteration, ValueError):
        return None
    return boot + int(start) / ticks


def current_owner() -> tuple[int, str, str | None]:
    """The (pid, host, pid_start) a runner records in its RunStarted event."""
    pid = os.getpid()
    return pid, socket.gethostname(), process_start(pid)


def is_alive(pid: int | None, host: str | None, pid_start: str | None) -> bool:
    """False only when the owner is provably gone; an owner on another host counts as alive.

    We can only see processes of this host. A missing pid start (no /proc, or not recorded)
    falls back to the pid check alone.
    """
    if host != socket.gethostname():
        return True
    if not pid or pid <= 0:
        # Not a real owner (pid 0 would signal our own process group): nothing to wait for.
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by another user
    fields = _stat_fields(pid)
    if fields is None:
        return True  # no /proc here: the signal check is all we have
    if fields[0] == "Z":
        return False  # a zombie has died; only its parent has not reaped it yet
    return pid_start is None or len(fields) <= 19 or fields[19] == pid_start


def _stat_fields(pid: int) -> list[str] | None:
    """Fields 3.. of /proc/<pid>/stat (state first), or None when it cannot be read."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            data = handle.read().decode("ascii", "replace")
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may itself contain spaces or ')'.
    return data[data.rfind(")") + 2 :].split()
