"""Custody of a run's processes: they die with their task, with their run and with their runner.

Whoever starts processes for a run (the task types here, a Dask worker later) does it through a
``RunCustody``. What holds, layer by layer:

- **tag**: each process gets ``WORKFLOW_RUN_TAG=<execution id>:<secret>/<n>`` in its environment
  (the run-wide ``<execution id>:<secret>`` is in every task's environment, so a notebook's
  processes carry it too). A process keeps it when it leaves its group (``setsid``, a double
  fork): a run's processes are found in ``/proc/*/environ``, and no other run's are;
- **record**: each process group is journaled (``ProcessStarted``: leader pid and start time),
  and so is the run's tag, so a reader that finds the run crashed ends what is left
  (``store.crash``);
- **guardian**: one small process per runner (``guardian.py``) is told the same and, when the
  runner dies (even of SIGKILL), ends every live run's processes within milliseconds;
- **dedicated runner** (``dedicate``: ``workflow run``, ``workflow serve``): the runner moves
  into a cgroup v2 folder of its own where it can make one, so everything it ever starts is born
  in it, with or without a tag, at no cost per process; its guardian kills that cgroup when the
  runner is gone. ``workflow run`` is also a child subreaper: orphaned descendants are
  re-parented to it rather than to init while it lives;
- **parent death** (``parent_death_preexec``): long-lived processes of the runner (kernels,
  fork servers) get ``PR_SET_PDEATHSIG`` = SIGKILL and die with it at once, guardian or not.
  Task processes do not: a pre-exec hook makes every spawn fork the whole runner instead of
  vfork it, several milliseconds per task (five times the engine's cost on a thousand small
  tasks); the guardian and the cgroup end them instead.

When a run ends (or is cancelled) ``RunCustody.close`` ends whatever still carries its tag:
SIGTERM, the grace period, SIGKILL. An attempt that times out or is cancelled ends its own
escaped processes the same way (``ProcessCustody.stop_escaped``); one that ends normally leaves
them to the end of the run (a server one task starts for the next). Killing follows
``execution.processes``: only what is provably the run's.
"""

from __future__ import annotations

import asyncio
import ctypes
import itertools
import os
import secrets
import signal
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..execution.events import Event, ProcessStarted
from ..execution.processes import (
    CGROUP_PREFIX,
    TAG_VAR,
    Leader,
    is_zombie,
    new_tag,
    parent_of,
    remaining,
    signal_run,
)
from ..execution.processes import leader as leader_of
from .guardian import guardian

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36


def _load_prctl() -> Any:
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):  # not Linux: the other layers still hold
        return None
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    prctl.restype = ctypes.c_int
    return prctl


_prctl = _load_prctl()
_cgroup: Path | None = None  # this process's own cgroup, once ``dedicate`` made one


def parent_death_preexec() -> Callable[[], None] | None:
    """A ``preexec_fn`` that makes the child die (SIGKILL) when the forking thread does.

    The signal follows the *thread* that forked: spawn from one that lives as long as the
    child needs its parent (a pool's long-lived thread). It runs between fork and exec, so it
    only makes system calls prepared here. None where there is no prctl.
    """
    if _prctl is None:
        return None
    parent = os.getpid()
    prctl = _prctl

    def preexec() -> None:
        prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0)
        if os.getppid() != parent:  # the parent died before the line above took effect
            os.kill(os.getpid(), signal.SIGKILL)

    return preexec


def dedicate(*, adopt_orphans: bool = True) -> Path | None:
    """Set up a process that runs workflows and nothing else; returns its cgroup, if any.

    Starts the guardian, then moves this process into a new cgroup v2 folder under its own
    (where the hierarchy is writable), so that all it starts from now on is in it. With
    ``adopt_orphans``, also becomes a child subreaper (Linux). Not for a shared process (a
    Jupyter kernel or server): it would take the other software's processes and orphans too.
    """
    global _cgroup
    if adopt_orphans and _prctl is not None:
        _prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0)
    if _cgroup is None:
        guardian.start()  # first, so that it stays outside the cgroup it will kill
        folder = make_cgroup()
        if folder is not None:
            # Told before this process moves in: should it die now, the folder is still removed.
            guardian.kill_at_exit(folder)
            if join_cgroup(folder):
                _cgroup = folder
            else:
                guardian.kill_at_exit(None)
                _rmdir(folder)
    return _cgroup


def dedicate_soon(*, adopt_orphans: bool = True) -> Callable[[], Path | None]:
    """``dedicate`` on a thread of its own; returns the function that waits for it (and raises
    what it raised). Moving a process into a new cgroup waits for the kernel (~10-15 ms, an
    RCU grace period, during which this process's other threads go on): a runner calls this
    first and waits right before its first task, having loaded and prepared the run meanwhile.
    """
    outcome: dict[str, Any] = {}

    def work() -> None:
        try:
            outcome["cgroup"] = dedicate(adopt_orphans=adopt_orphans)
        except BaseException as exc:  # handed to the waiter, whatever it was
            outcome["error"] = exc

    thread = threading.Thread(target=work, name="workflow-dedicate", daemon=True)
    thread.start()

    def wait() -> Path | None:
        thread.join()
        if "error" in outcome:
            raise outcome["error"]
        return outcome.get("cgroup")

    return wait


def process_cgroup() -> Path | None:
    return _cgroup


@dataclass(frozen=True)
class Spawn:
    """How to start one process: its environment and its own tag."""

    env: dict[str, str] | None
    tag: str | None = None


class RunCustody:
    """The processes of one run: its tag and the groups it started.

    ``emit`` receives a ``ProcessStarted`` for each group (the engine journals it); ``journal``
    is the run's journal, which the guardian touches when the runner dies (the best evidence
    of when it did).
    """

    def __init__(
        self,
        execution_id: str,
        emit: Callable[[Event], None] | None = None,
        journal: Path | None = None,
    ):
        self.execution_id = execution_id
        self.tag = new_tag(execution_id)
        self.journal = journal
        self._emit = emit
        self.leaders: list[Leader] = []
        self._serial = itertools.count(1)
        self._opened = False
        self._closed = False

    @property
    def cgroup(self) -> str | None:
        """The cgroup every process of this run is born in, if this runner made one."""
        return str(_cgroup) if _cgroup else None

    def environment(self) -> dict[str, str]:
        """What every task's environment gets (the run's tag)."""
        return {TAG_VAR: self.tag}

    def heartbeat(self) -> None:
        """Called while the run runs: a guardian killed meanwhile is replaced."""
        if self._opened and not self._closed:
            guardian.ensure()

    def attempt(self, task_id: str, attempt: int) -> ProcessCustody:
        return ProcessCustody(self, task_id, attempt)

    def _open(self) -> None:
        """At the first process: tell the guardian about the run."""
        if not self._opened:
            self._opened = True
            guardian.watch(self.tag, self.journal)

    def spawn(self, env: Mapping[str, str] | None) -> Spawn:
        self._open()
        tag = f"{self.tag}/{next(self._serial)}"
        full = dict(os.environ if env is None else env)
        full[TAG_VAR] = tag
        return Spawn(full, tag)

    def record(self, pid: int, task_id: str | None, attempt: int | None) -> None:
        """A process group now works for the run: journal it and tell the guardian."""
        self._open()
        leader = leader_of(pid)
        self.leaders.append(leader)
        guardian.group(self.tag, leader)
        if self._emit is not None:
            self._emit(
                ProcessStarted(
                    execution_id=self.execution_id,
                    task_id=task_id,
                    attempt=attempt,
                    pid=pid,
                    pid_start=leader.start,
                    cgroup=str(_cgroup) if _cgroup else None,
                )
            )

    async def close(self, grace: float) -> None:
        """End what is left of the run's processes (SIGTERM, ``grace``, SIGKILL)."""
        if not self._opened or self._closed:
            return
        self._closed = True
        await stop(self.tag, grace)
        guardian.end(self.tag)


class ProcessCustody:
    """The run's custody as one attempt of one task sees it."""

    def __init__(self, run: RunCustody, task_id: str, attempt: int):
        self.run = run
        self.task_id = task_id
        self.attempt = attempt

    def spawn(self, env: Mapping[str, str] | None) -> Spawn:
        """The environment for a process this attempt starts."""
        return self.run.spawn(env)

    def started(self, pid: int) -> None:
        """A process group this attempt leads (``pid`` is its leader) has started."""
        self.run.record(pid, self.task_id, self.attempt)

    async def stop_escaped(self, spawn: Spawn, grace: float, leader: int | None = None) -> None:
        """End what a stopped process left outside its group (``setsid``, double forks)."""
        if spawn.tag is not None:
            await stop(spawn.tag, grace, keep=leader)


async def stop(tag: str, grace: float, keep: int | None = None) -> None:
    """SIGTERM what carries ``tag``, SIGKILL what is left after ``grace``.

    Processes this runner adopted (as a subreaper) are reaped once dead; ``keep`` is a child the
    caller reaps itself (asyncio's watcher waits for a task's leader).
    """
    sent = signal_run(tag, [], [], signal.SIGTERM)
    if not sent:
        return
    loop = asyncio.get_running_loop()
    deadline = loop.time() + grace
    while remaining(tag) and loop.time() < deadline:
        await asyncio.sleep(0.02)
    for _ in range(200):  # a process may fork between a scan and a kill: until none is left
        if not remaining(tag):
            break
        sent |= signal_run(tag, [], [], signal.SIGKILL)
        await asyncio.sleep(0.01)
    _reap(sent - {keep})


def _reap(pids: set[int]) -> None:
    """Collect the exit of dead processes that are our children only by adoption."""
    me = os.getpid()
    for pid in pids:
        if parent_of(pid) != me or not is_zombie(pid):
            continue
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass


def own_cgroup() -> Path | None:
    """This process's cgroup v2 folder, if the hierarchy is mounted here."""
    try:
        line = next(
            entry
            for entry in Path("/proc/self/cgroup").read_text().splitlines()
            if entry.startswith("0::")
        )
        mounts = Path("/proc/self/mountinfo").read_text().splitlines()
    except (OSError, StopIteration):
        return None
    relative = line[3:]
    for mount in mounts:
        left, _, right = mount.partition(" - ")
        if not right.startswith("cgroup2 "):
            continue
        fields = left.split()
        root, point = fields[3], fields[4]
        if relative == root or relative.startswith(root.rstrip("/") + "/"):
            return Path(point) / relative[len(root) :].lstrip("/")
    return None


def make_cgroup() -> Path | None:
    """A new cgroup folder (named ``CGROUP_PREFIX`` + a secret) under this process's own, or
    None where cgroups are not ours to make."""
    parent = own_cgroup()
    if parent is None:
        return None
    folder = parent / (CGROUP_PREFIX + secrets.token_hex(16))
    try:
        folder.mkdir()
    except OSError:
        return None
    if not os.access(folder / "cgroup.procs", os.W_OK):
        _rmdir(folder)
        return None
    return folder


def join_cgroup(folder: Path, pid: int = 0) -> bool:
    """Move process ``pid`` (0: this one) into ``folder``."""
    try:
        (folder / "cgroup.procs").write_text(str(pid))
    except OSError:
        return False
    return True


def _rmdir(folder: Path) -> None:
    try:
        folder.rmdir()
    except OSError:
        pass
