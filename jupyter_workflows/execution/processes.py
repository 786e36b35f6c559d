"""Which processes are a run's, and ending them: the one rule every killer of a run follows.

The runner at a run's end, its guardian when the runner dies, and the reader that finds a
crashed run all end a run's processes through ``end_run``. A process counts as the run's only
on proof, one of:

- its tag: every task process is started with ``WORKFLOW_RUN_TAG=<execution id>:<secret>`` (the
  runner adds ``/<n>`` per process it spawns) in its environment. A process keeps its initial
  environment when it leaves its process group (``setsid``, a double fork), so it is found in
  ``/proc/<pid>/environ``; the secret is random, so no other run's process carries it;
- a process group the run recorded with its leader's start time: it is signalled only while the
  leader is that very process (a reused pid is another process, with another start time);
- its runner's cgroup (a runner that runs workflows only makes one for itself where cgroup v2
  is writable): everything in it was born in it, so once that runner is dead, all of it is
  left over from its runs. Only a folder named as a runner names its own (``CGROUP_PREFIX`` and
  32 hex digits), that does not hold the caller, is ever killed.

A pid alone is never proof. ``uid`` restricts a reader to processes of the journal's owner, so
a journal written by one user can never get another user's processes killed.
"""

from __future__ import annotations

import os
import re
import secrets
import signal
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from .owner import process_start

TAG_VAR = "WORKFLOW_RUN_TAG"
# <execution id>:<secret>, and /<n> for one process's own tag.
_TAG = re.compile(r"[^\s/:]{1,200}:[0-9a-f]{32}(/[0-9]{1,12})?")
CGROUP_PREFIX = "jupyter-workflows-"
_CGROUP = re.compile(re.escape(CGROUP_PREFIX) + "[0-9a-f]{32}")


def new_tag(execution_id: str) -> str:
    """A fresh tag for one run of ``execution_id``."""
    safe = re.sub(r"[\s/:]", "_", execution_id)[:200] or "run"
    return f"{safe}:{secrets.token_hex(16)}"


def valid_tag(tag: object) -> bool:
    """Whether ``tag`` is one ``new_tag`` could have made, or one of its processes' tags (a
    journal is read, not trusted: an empty tag would match every tagged process)."""
    return isinstance(tag, str) and _TAG.fullmatch(tag) is not None


@dataclass(frozen=True)
class Leader:
    """A process group the run started: its leader's pid and start time."""

    pid: int
    start: str | None

    def alive(self) -> bool:
        """The leader is still this very process (not a zombie, not a reused pid)."""
        stat = _stat(self.pid)
        if stat is None or self.start is None:
            return False
        return stat[0] != "Z" and stat[3] == self.start


def _stat(pid: int) -> tuple[str, int, int, str] | None:
    """(state, ppid, pgid, start time) of a process, or None when it cannot be read."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            data = handle.read().decode("ascii", "replace")
    except OSError:
        return None
    fields = data[data.rfind(")") + 2 :].split()
    if len(fields) < 20:
        return None
    return fields[0], int(fields[1]), int(fields[2]), fields[19]


def parent_of(pid: int) -> int | None:
    stat = _stat(pid)
    return None if stat is None else stat[1]


def is_zombie(pid: int) -> bool:
    stat = _stat(pid)
    return stat is not None and stat[0] == "Z"


def _uid(pid: int) -> int | None:
    try:
        return os.stat(f"/proc/{pid}").st_uid
    except OSError:
        return None


def tagged(tag: str, uid: int | None = None) -> list[int]:
    """Live processes (not this one) whose environment holds the tag ``tag`` or ``tag/...``."""
    if not tag:
        return []
    exact = f"{TAG_VAR}={tag}".encode()
    prefix = exact + b"/"
    me = os.getpid()
    found = []
    try:
        entries = os.scandir("/proc")
    except OSError:
        return []
    with entries:
        for entry in entries:
            if not entry.name.isdigit() or int(entry.name) == me:
                continue
            try:
                with open(f"/proc/{entry.name}/environ", "rb") as handle:
                    environ = handle.read()
            except OSError:
                continue  # gone, or not ours to read
            if exact not in environ:
                continue
            if any(v == exact or v.startswith(prefix) for v in environ.split(b"\0")):
                pid = int(entry.name)
                if not is_zombie(pid) and (uid is None or _uid(pid) == uid):
                    found.append(pid)
    return found


def cgroup_procs(folder: Path) -> list[int]:
    try:
        text = (folder / "cgroup.procs").read_text()
    except OSError:
        return []
    return [int(word) for word in text.split()]


def cgroup_populated(folder: Path) -> bool:
    try:
        return "populated 1" in (folder / "cgroup.events").read_text()
    except OSError:
        return False


def is_runner_cgroup(folder: Path, uid: int | None = None) -> bool:
    """``folder`` is a cgroup a runner made for itself (by its name), owned by ``uid`` if
    given, and the caller is not in it."""
    if not _CGROUP.fullmatch(folder.name) or not folder.is_absolute() or ".." in folder.parts:
        return False
    try:
        if uid is not None and folder.stat().st_uid != uid:
            return False
    except OSError:
        return False
    return (folder / "cgroup.procs").exists() and os.getpid() not in cgroup_procs(folder)


def signal_run(
    tag: str | None,
    leaders: Iterable[Leader] = (),
    cgroups: Iterable[Path] = (),
    sig: signal.Signals = signal.SIGKILL,
    *,
    uid: int | None = None,
) -> set[int]:
    """Send ``sig`` once to every process provably the run's; returns the pids signalled.

    A ``tag`` that is not a run's (``valid_tag``: say, empty) matches no process.
    """
    sent: set[int] = set()
    for folder in cgroups:
        if is_runner_cgroup(folder, uid):
            members = cgroup_procs(folder)
            if sig == signal.SIGKILL and _write(folder / "cgroup.kill", b"1"):
                sent.update(members)
            else:
                sent.update(pid for pid in members if _kill(pid, sig))
    proven = [leader.pid for leader in leaders if leader.alive()]
    for pid in [*proven, *(tagged(tag, uid) if tag and valid_tag(tag) else [])]:
        if uid is not None and _uid(pid) != uid:
            continue
        # A proven group leader stands for its group (a group id is not reused while a
        # member lives, and this one is the run's); anything else goes alone.
        stat = _stat(pid)
        leads = stat is not None and stat[2] == pid
        if _killpg(pid, sig) if leads else _kill(pid, sig):
            sent.add(pid)
    return sent


def remaining(
    tag: str | None,
    leaders: Iterable[Leader] = (),
    cgroups: Iterable[Path] = (),
    uid: int | None = None,
) -> bool:
    """Whether anything provably the run's is still alive."""
    if any(cgroup_populated(f) for f in cgroups if is_runner_cgroup(f, uid)):
        return True
    if any(leader.alive() for leader in leaders):
        return True
    return bool(tag and valid_tag(tag) and tagged(tag, uid))


def end_run(
    tag: str | None,
    leaders: Iterable[Leader] = (),
    cgroups: Iterable[Path] = (),
    *,
    grace: float = 0.0,
    timeout: float = 2.0,
    uid: int | None = None,
) -> set[int]:
    """End every process provably the run's; blocking. Returns the pids signalled.

    With ``grace``, SIGTERM first and SIGKILL what is left after it; then SIGKILL again until
    nothing is left (a process may fork between a scan and a kill) or ``timeout`` passed.
    Runner cgroups, once empty, are removed.
    """
    leaders, cgroups = list(leaders), list(cgroups)
    sent: set[int] = set()
    if grace > 0:
        sent |= signal_run(tag, leaders, cgroups, signal.SIGTERM, uid=uid)
        deadline = time.monotonic() + grace
        while sent and remaining(tag, leaders, cgroups, uid) and time.monotonic() < deadline:
            time.sleep(0.02)
    deadline = time.monotonic() + timeout
    while True:
        sent |= signal_run(tag, leaders, cgroups, signal.SIGKILL, uid=uid)
        if not remaining(tag, leaders, cgroups, uid) or time.monotonic() > deadline:
            break
        time.sleep(0.01)
    remove_cgroups(cgroups, uid=uid, wait=0.5)
    return sent


def remove_cgroups(cgroups: Iterable[Path], *, uid: int | None = None, wait: float = 0.0) -> None:
    """Remove runner cgroups once empty (waiting up to ``wait`` for the last members to go)."""
    for folder in cgroups:
        if not is_runner_cgroup(folder, uid):
            continue
        deadline = time.monotonic() + wait
        while cgroup_populated(folder) and time.monotonic() < deadline:
            time.sleep(0.01)
        try:
            folder.rmdir()
        except OSError:
            pass  # still populated, or removed already


def _kill(pid: int, sig: signal.Signals) -> bool:
    try:
        os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def _killpg(pgid: int, sig: signal.Signals) -> bool:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def _write(path: Path, data: bytes) -> bool:
    try:
        fd = os.open(path, os.O_WRONLY)
    except OSError:
        return False
    try:
        os.write(fd, data)
    except OSError:
        return False
    finally:
        os.close(fd)
    return True


def leader(pid: int) -> Leader:
    """The process ``pid`` as a Leader (its start time read now)."""
    return Leader(pid, process_start(pid))
