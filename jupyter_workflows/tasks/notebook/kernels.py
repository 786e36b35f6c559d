"""Kernel processes: starting one (forked from a warm server, or spawned), watching, stopping.

Nothing here is tied to an event loop: a kernel is a process plus a connection file, so one
started while a run's loop was alive serves a task on the next run's loop (the engine runs
each run on a fresh loop). Clients that talk to a kernel are per task (``client.py``).

Every kernel runs in its own session (process group): stopping it stops what the notebook
started too. Connection files and logs live in one private folder per runner process.

Kernels belong to the runner process (the pool outlives runs), not to a run: each dies with the
runner (parent-death signal: a spawned kernel from the pool's long-lived thread, a fork server
likewise, a forked kernel with its fork server) and carries no run's tag in its own
environment. A task gives the kernel its environment, the run's tag included, through
``os.environ`` (``client.setup_code``), so what a notebook starts carries the tag; the notebook
task records the kernel's process group with the run (``custody``).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ...errors import WorkflowError
from ...execution.owner import is_alive, process_start
from ...execution.processes import TAG_VAR
from ..custody import parent_death_preexec
from ..process import group_alive, signal_group
from .forkserver import ForkServer, ForkServerError, StartupKey
from .specs import KernelSpec

# Set by us for each kernel; not part of the environment a task asks for.
PARENT_VAR = "JPY_PARENT_PID"
_HOST = socket.gethostname()


class KernelError(WorkflowError):
    """A kernel did not start, or died: the message says which and why."""


@dataclass(eq=False)
class Kernel:
    """One kernel process. ``env`` is its ``os.environ`` as far as we have set it."""

    spec: KernelSpec
    pid: int
    connection_file: Path
    log_file: Path
    cwd: str
    env: dict[str, str]
    popen: subprocess.Popen[bytes] | None = None
    server: ForkServer | None = None
    started: str | None = None  # process start time: a reused pid is not this kernel
    uses: int = 0
    idle_since: float = field(default_factory=time.monotonic)

    def alive(self) -> bool:
        if self.popen is not None:
            return self.popen.poll() is None
        # Forked kernels are not our children: a pid and its start time (not a zombie).
        return is_alive(self.pid, _HOST, self.started)

    def signal(self, sig: signal.Signals) -> None:
        """Signal the kernel's process group (the kernel and what the notebook started)."""
        # Once the kernel is gone, only while a child it started still lives in its group.
        if self.alive() or group_alive(self.pid):
            signal_group(self.pid, sig)

    def log_tail(self, lines: int = 3) -> str:
        try:
            text = self.log_file.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        kept = [line.strip() for line in text.splitlines() if line.strip()]
        noise = ("NOTE:", "To exit", '"quit"', "To read more", "To connect", "--existing")
        kept = [line for line in kept if not line.startswith(noise) and "WARNING" not in line]
        return " | ".join(kept[-lines:])

    def remove_files(self) -> None:
        for path in self.connection_file.parent.glob(self.connection_file.stem + "*"):
            try:
                path.unlink()
            except OSError:
                pass


def kernel_env(task_env: Mapping[str, str], spec: KernelSpec) -> dict[str, str]:
    """The environment a kernel for a task gets: the task's, plus the kernelspec's own."""
    env = {**task_env, **spec.env}
    # A runner inside a Jupyter kernel has its server's: the parent is ours to set, and this
    # kernel is no session of that server.
    env.pop(PARENT_VAR, None)
    env.pop("JPY_SESSION_NAME", None)
    return env


class Launcher:
    """Starts kernels: ipykernel on this interpreter from fork servers, others by spawning."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._servers: dict[StartupKey, ForkServer] = {}
        self._workdir: Path | None = None
        self._forking = True  # turned off when a server cannot fork

    @property
    def workdir(self) -> Path:
        with self._lock:
            if self._workdir is None:
                self._workdir = Path(tempfile.mkdtemp(prefix="jw-kernels-"))
            return self._workdir

    def close(self) -> None:
        """Remove the runtime folder (once the kernels and servers have been stopped)."""
        with self._lock:
            workdir, self._workdir = self._workdir, None
        if workdir is not None:
            shutil.rmtree(workdir, ignore_errors=True)

    def launch(
        self, spec: KernelSpec, env: dict[str, str], cwd: str, startup: StartupKey
    ) -> Kernel:
        """Start a kernel (blocking, a few ms; up to 0.3 s when a server must start first)."""
        name = f"kernel-{uuid.uuid4().hex[:12]}"
        if spec.language == "python":
            # A Python kernel may serve later tasks (a spare, a parked kernel) of other runs:
            # no run's tag in its own environment (each task sets it through os.environ).
            env = {k: v for k, v in env.items() if k != TAG_VAR}
        connection_file = self.workdir / f"{name}.json"
        log_file = self.workdir / f"{name}.log"
        _write_connection_file(connection_file, self.workdir / name, spec.own_ipykernel)
        try:
            if spec.own_ipykernel and self._forking:
                for _ in range(2):  # a server that died is replaced by the second try
                    try:
                        return self._fork(spec, env, cwd, startup, connection_file, log_file)
                    except ForkServerError:
                        continue
                self._forking = False  # spawn from now on: spawning says what is wrong
            return _spawn(spec, env, cwd, connection_file, log_file)
        except BaseException:
            connection_file.unlink(missing_ok=True)
            raise

    def _fork(
        self,
        spec: KernelSpec,
        env: dict[str, str],
        cwd: str,
        startup: StartupKey,
        connection_file: Path,
        log_file: Path,
    ) -> Kernel:
        server = self._server(startup, env)
        pid = server.fork(["-f", str(connection_file)], env, cwd, log_file)
        return Kernel(
            spec,
            pid,
            connection_file,
            log_file,
            cwd,
            dict(env),
            server=server,
            started=process_start(pid),
        )

    def _server(self, startup: StartupKey, env: Mapping[str, str]) -> ForkServer:
        workdir = self.workdir
        with self._lock:
            server = self._servers.get(startup)
            if server is None or not server.alive():
                server = self._servers[startup] = ForkServer(env, workdir)
            return server

    def has_servers(self) -> bool:
        with self._lock:
            return bool(self._servers)

    def idle_servers(self, in_use: set[ForkServer], idle_seconds: float) -> list[ForkServer]:
        """Remove and return the servers no kernel needs that have been idle that long."""
        now = time.monotonic()
        with self._lock:
            done = [
                key
                for key, server in self._servers.items()
                if server not in in_use and now - server.last_used >= idle_seconds
            ]
            return [self._servers.pop(key) for key in done]


def _spawn(
    spec: KernelSpec, env: dict[str, str], cwd: str, connection_file: Path, log_file: Path
) -> Kernel:
    argv = spec.command(str(connection_file))
    with open(log_file, "ab") as log:
        try:
            popen = subprocess.Popen(
                argv,
                env={**env, PARENT_VAR: str(os.getpid())},
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=parent_death_preexec(),  # dies with the runner
            )
        except OSError as exc:
            raise KernelError(f"cannot start kernel '{spec.name}' ({argv[0]}): {exc}") from None
    return Kernel(spec, popen.pid, connection_file, log_file, cwd, dict(env), popen=popen)


def _write_connection_file(path: Path, ipc_prefix: Path, ipc: bool) -> None:
    from jupyter_client.connect import write_connection_file

    key = uuid.uuid4().hex.encode()
    # ipykernel over unix sockets in our private folder: no TCP port to race another kernel
    # for, and no other user can connect. Other kernels may not speak ipc: TCP on loopback.
    if ipc and os.name == "posix" and len(str(ipc_prefix)) < 90:
        write_connection_file(str(path), ip=str(ipc_prefix), transport="ipc", key=key)
    else:
        write_connection_file(str(path), ip="127.0.0.1", key=key)


def wait_gone(kernel: Kernel, seconds: float) -> bool:
    """Block until the kernel process has exited (True) or ``seconds`` passed (False)."""
    if kernel.popen is not None:
        try:
            kernel.popen.wait(timeout=seconds)
            return True
        except subprocess.TimeoutExpired:
            return False
    deadline = time.monotonic() + seconds
    while kernel.alive():
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.01)
    return True


def stop(kernel: Kernel, grace: float) -> None:
    """Blocking: wait ``grace`` for a kernel asked to shut down, then kill its group."""
    if not wait_gone(kernel, grace):
        kernel.signal(signal.SIGKILL)
        wait_gone(kernel, 2.0)
    if group_alive(kernel.pid):  # children the notebook left behind
        signal_group(kernel.pid, signal.SIGKILL)
    kernel.remove_files()
