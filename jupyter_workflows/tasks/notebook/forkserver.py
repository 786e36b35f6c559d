"""The runner's side of the fork server (``_forkserver_main.py``): one per startup environment.

A kernel forked from the server inherits what the server's interpreter fixed at its own start:
``sys.path`` from PYTHONPATH, the locale, the dynamic loader's paths. So servers are keyed by
the variables that act at interpreter start (:func:`startup_env`); a task whose environment
differs there gets a server of its own. Requests are blocking pipe I/O under a lock: callers
run them in a worker thread, never on an event loop.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..custody import parent_death_preexec

# Variables read once when an interpreter starts (or when a module is imported by the server).
STARTUP_PREFIXES = ("PYTHON", "LD_", "LC_", "LANG", "PYDEVD", "DYLD_")

StartupKey = tuple[tuple[str, str], ...]


def startup_env(env: Mapping[str, str]) -> StartupKey:
    return tuple(sorted((k, v) for k, v in env.items() if k.startswith(STARTUP_PREFIXES)))


class ForkServerError(Exception):
    """The server could not fork a kernel (it died, or its interpreter lacks ipykernel)."""


class ForkServer:
    """One warm interpreter that forks ipykernel kernels on request."""

    def __init__(self, env: Mapping[str, str], workdir: Path):
        source = (Path(__file__).parent / "_forkserver_main.py").read_text(encoding="utf-8")
        self.log = workdir / f"forkserver-{os.getpid()}-{id(self):x}.log"
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-c", source],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                cwd=workdir,
                env=dict(env),
                start_new_session=True,  # Ctrl-C in a terminal is the runner's, not ours
                preexec_fn=parent_death_preexec(),  # and its kernels with it (they ask too)
            )
        self._lock = threading.Lock()
        self._ready = False
        self.last_used = time.monotonic()

    def fork(self, args: list[str], env: Mapping[str, str], cwd: str, log: Path) -> int:
        """Fork a kernel running ``ipykernel_launcher *args``; returns its pid."""
        request = {"args": args, "env": dict(env), "cwd": cwd, "log": str(log)}
        with self._lock:
            self.last_used = time.monotonic()
            if not self._ready:
                hello = self._read()
                if hello.get("threads", 1) != 1:
                    self.close()  # forking a threaded process is not safe
                    raise ForkServerError("the fork server started threads")
                self._ready = True
            assert self.process.stdin is not None
            try:
                self.process.stdin.write(json.dumps(request).encode() + b"\n")
                self.process.stdin.flush()
            except (BrokenPipeError, ValueError):
                raise ForkServerError(self._died()) from None
            reply = self._read()
        if "pid" not in reply:
            raise ForkServerError(str(reply.get("error")))
        return int(reply["pid"])

    def _read(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise ForkServerError(self._died())
        return json.loads(line)  # type: ignore[no-any-return]

    def _died(self) -> str:
        self.process.poll()
        try:
            tail = self.log.read_text(errors="replace").strip().splitlines()[-1:]
        except OSError:
            tail = []
        return "the kernel fork server exited" + (f": {tail[0]}" if tail else "")

    def alive(self) -> bool:
        return self.process.poll() is None

    def close(self) -> None:
        """End the server (its kernels live on: they are their own sessions)."""
        if self.process.stdin is not None:
            try:
                self.process.stdin.close()  # end of input ends the server
            except OSError:
                pass
        try:
            self.process.wait(timeout=2)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()
        try:
            self.log.unlink()
        except OSError:
            pass
