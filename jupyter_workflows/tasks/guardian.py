"""The guardian: a small process that outlives its runner just long enough to end its runs.

When a runner dies of SIGKILL, nothing is left in it to stop what its runs started, and a
reader may notice the crash only days later. So each runner process starts one guardian
(lazily, at the first process a run starts; at once for a dedicated runner) and tells it, over
a pipe, each live run's tag, journal and process groups, and its own cgroup if it has one.
When the runner is gone, by any signal or by exiting (its pipe closes, and the guardian is
re-parented): the guardian notes the time on each live run's journal (the best
evidence of the death, for the reader that records the crash), ends every process of those
runs and everything in the runner's cgroup (``execution.processes.end_run``), then exits. A run
that ended is forgotten.

The guardian runs as ``python -I -S -c`` with only this package's folder on its path, in a
session of its own (a Ctrl-C or a group kill aimed at the runner does not reach it), and holds
no other file. It carries no run's tag and sits in no run's cgroup, so nothing it guards kills it.
If it dies, the runner starts another at its next message or heartbeat (``ensure``) and tells
it everything again.
"""

from __future__ import annotations

import json
import os
import select
import sys
import threading
import time
from pathlib import Path
from typing import IO, Any

from ..execution.processes import Leader, end_run, remove_cgroups

# Seen in `ps` (and by tests looking for it).
NAME = "jupyter-workflows-guardian"
_BOOT = (
    "import sys; sys.path.insert(0, sys.argv[1]); "
    "from jupyter_workflows.tasks.guardian import main; main(int(sys.argv[3]))"
)


class Guardian:
    """The runner's side: starts the guardian and keeps it told. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._process: Any = None
        self._runs: dict[str, dict[str, Any]] = {}
        self._cgroup: Path | None = None
        self._stdin: IO[bytes] | None = None  # the write end of the guardian's pipe
        self._owner = os.getpid()

    def start(self) -> None:
        """Start it now (a dedicated runner does, before it moves into its own cgroup)."""
        with self._lock:
            if not self._alive():
                self._start()

    def kill_at_exit(self, cgroup: Path | None) -> None:
        """Kill everything in ``cgroup`` (the runner's own) once the runner is gone."""
        with self._lock:
            self._cgroup = cgroup
            self._send({"cgroup": str(cgroup) if cgroup is not None else None})

    def watch(self, tag: str, journal: Path | None) -> None:
        with self._lock:
            self._runs[tag] = {"journal": str(journal) if journal else None, "groups": []}
            self._send({"watch": tag, "journal": self._runs[tag]["journal"]})

    def group(self, tag: str, leader: Leader) -> None:
        with self._lock:
            if tag in self._runs:
                self._runs[tag]["groups"].append([leader.pid, leader.start])
                self._send({"group": tag, "pid": leader.pid, "start": leader.start})

    def end(self, tag: str) -> None:
        with self._lock:
            if self._runs.pop(tag, None) is not None and self._alive():
                self._send({"end": tag}, start=False)

    def ensure(self) -> None:
        """Start a new guardian if this one died while runs are live (and tell it all)."""
        with self._lock:
            if (self._runs or self._cgroup is not None) and not self._alive():
                self._start()

    def pid(self) -> int | None:
        with self._lock:
            return self._process.pid if self._alive() else None

    def _alive(self) -> bool:
        if self._owner != os.getpid():  # a forked copy of the runner: the guardian is not ours
            self._owner, self._process, self._runs, self._cgroup = os.getpid(), None, {}, None
        return self._process is not None and self._process.poll() is None

    def _send(self, message: dict[str, Any], start: bool = True) -> None:
        if not self._alive():
            if start:
                self._start()  # and tells it everything, this message included
            return
        try:
            self._write(message)
        except OSError:  # it died just now: the next message starts another
            self._process = None

    def _start(self) -> bool:
        """Start a guardian, already told everything: the messages are in its pipe before it
        exists, so there is no moment when it runs knowing less than the runner told."""
        import subprocess

        replay = [{"cgroup": str(self._cgroup)}] if self._cgroup is not None else []
        for tag, run in self._runs.items():
            replay.append({"watch": tag, "journal": run["journal"]})
            replay += [{"group": tag, "pid": p, "start": s} for p, s in run["groups"]]
        data = b"".join(json.dumps(m).encode() + b"\n" for m in replay)
        read, write = os.pipe()
        os.set_blocking(write, False)
        try:
            written = os.write(write, data) if data else 0
        except BlockingIOError:  # more than a pipe holds: the rest once it reads
            written = 0
        os.set_blocking(write, True)
        root = str(Path(__file__).resolve().parents[2])
        try:
            self._process = subprocess.Popen(
                [sys.executable, "-I", "-S", "-c", _BOOT, root, NAME, str(os.getpid())],
                stdin=read,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                cwd="/",
                start_new_session=True,
            )
        except OSError:
            os.close(write)
            self._process = None
            return False
        finally:
            os.close(read)
        self._stdin = os.fdopen(write, "wb")
        if self._cgroup is not None:  # born in the cgroup it is to kill: out of it
            try:
                (self._cgroup.parent / "cgroup.procs").write_text(str(self._process.pid))
            except OSError:
                pass
        try:
            if written < len(data):
                self._stdin.write(data[written:])
                self._stdin.flush()
        except OSError:
            self._process = None
            return False
        return True

    def _write(self, message: dict[str, Any]) -> None:
        assert self._stdin is not None
        self._stdin.write(json.dumps(message).encode() + b"\n")
        self._stdin.flush()


guardian = Guardian()


def main(runner: int) -> None:
    """The guardian process: follow the runner's messages until it is gone, then end its runs
    and empty its cgroup."""
    state: dict[str, Any] = {"runs": {}, "cgroup": None}
    pending = b""
    while True:
        ready, _, _ = select.select([0], [], [], 0.5)
        if not ready:
            if os.getppid() != runner:  # re-parented: the runner is gone, whoever holds the pipe
                break
            continue
        data = os.read(0, 65536)
        if not data:
            break
        *lines, pending = (pending + data).split(b"\n")
        for line in lines:
            _apply(state, line)
    # The pipe closes while the runner exits (or a forked copy may hold it): the runner is gone
    # once this process is re-parented, and not before (it is in the cgroup to be killed).
    while os.getppid() == runner:
        time.sleep(0.005)
    at = time.time()
    for run in state["runs"].values():
        if run["journal"]:
            try:
                os.utime(run["journal"], (at, at))
            except OSError:
                pass
    cgroups = [Path(state["cgroup"])] if state["cgroup"] else []
    if cgroups:
        end_run(None, [], cgroups, timeout=5.0)
    for tag, run in state["runs"].items():
        end_run(tag, run["leaders"], [], timeout=5.0)
    remove_cgroups(cgroups, wait=3.0)


def _apply(state: dict[str, Any], line: bytes) -> None:
    try:
        message = json.loads(line)
    except ValueError:
        return
    runs = state["runs"]
    if "watch" in message:
        runs[message["watch"]] = {"journal": message.get("journal"), "leaders": []}
    elif "group" in message and message["group"] in runs:
        runs[message["group"]]["leaders"].append(Leader(int(message["pid"]), message["start"]))
    elif "end" in message:
        runs.pop(message["end"], None)
    elif "cgroup" in message:
        state["cgroup"] = message["cgroup"]
