"""The process-wide kernel pool: pre-started spares, kernels kept for reuse, and retirement.

A notebook task takes a ready spare (or starts a kernel) and the pool at once starts the next
ones in the background, so the following notebook finds one ready. Spares are keyed by
(kernel spec, working directory, start-up environment) and only kept for Python kernels: a
spare was started with an earlier task's environment, which the task's setup code corrects
through ``os.environ`` (see ``client.setup_code``). Used kernels are shut down in the
background; with ``reuse_kernel`` they are parked for the next task of the same key instead.

Kernels are processes, not loop objects, so the pool outlives each run's event loop. Idle
spares and parked kernels end after ``idle_seconds``, idle fork servers after
``server_idle_seconds``, everything at interpreter exit; ``close()`` ends the idle ones now.
"""

from __future__ import annotations

import asyncio
import atexit
import signal
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor

from .forkserver import StartupKey, startup_env
from .kernels import Kernel, KernelError, Launcher, stop
from .specs import KernelSpec

Key = tuple[KernelSpec, str, StartupKey]


class KernelPool:
    """Kernels for notebook tasks; thread-safe, shared by every run of the process."""

    def __init__(
        self, spares: int = 2, idle_seconds: float = 30.0, server_idle_seconds: float = 300.0
    ):
        self.spares = spares
        self.idle_seconds = idle_seconds
        self.server_idle_seconds = server_idle_seconds
        self.launcher = Launcher()
        self._lock = threading.Lock()
        self._spare: dict[Key, list[Kernel]] = {}
        self._pending: dict[Key, int] = {}
        self._parked: dict[Key, list[Kernel]] = {}
        self._live: set[Kernel] = set()
        self._retiring: set[Kernel] = set()  # asked to shut down, not yet gone
        self._executor: ThreadPoolExecutor | None = None
        self._janitor: threading.Thread | None = None
        self._closed = False
        atexit.register(self.shutdown)

    # -- taking and giving back ---------------------------------------------------------
    async def acquire(
        self, spec: KernelSpec, env: dict[str, str], cwd: str, *, reuse: bool = False
    ) -> Kernel:
        """A started kernel (maybe still booting: connect to it to wait until it is ready)."""
        startup = startup_env(env)
        key = (spec, cwd, startup)
        kernel = self._take(key, reuse)
        if kernel is None:
            kernel = await self._launch_now(spec, env, cwd, startup)
        if spec.language == "python" and not reuse:
            self._refill(key, env)
        return kernel

    def park(self, kernel: Kernel) -> None:
        """Keep a used kernel for the next ``reuse_kernel`` task of its key."""
        kernel.idle_since = time.monotonic()
        with self._lock:
            self._parked.setdefault(_key(kernel), []).append(kernel)
        self._watch()

    def retire(self, kernel: Kernel, grace: float = 3.0) -> None:
        """Let a kernel that was asked to shut down exit (killed after ``grace``), unwaited."""
        with self._lock:
            self._retiring.add(kernel)
        threading.Thread(target=self._stop, args=(kernel, grace), daemon=True).start()

    async def kill(self, kernel: Kernel, grace: float) -> None:
        """SIGTERM the kernel's group, SIGKILL after ``grace``; returns once it is gone."""
        kernel.signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        while kernel.alive() and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        if kernel.alive():
            kernel.signal(signal.SIGKILL)
            while kernel.alive() and time.monotonic() < deadline + 2:
                await asyncio.sleep(0.01)
        self._stop(kernel, 0)

    def close(self) -> None:
        """End every idle kernel now (spares and parked ones); kernels in use are untouched."""
        with self._lock:
            idle = [
                k for kernels in (*self._spare.values(), *self._parked.values()) for k in kernels
            ]
            self._spare.clear()
            self._parked.clear()
        for kernel in idle:
            kernel.signal(signal.SIGTERM)
            self.retire(kernel, 2.0)

    def shutdown(self, grace: float = 2.0) -> None:
        """At exit: kill every kernel this pool started and stop the fork servers.

        Kernels already asked to shut down get ``grace`` seconds to finish (their atexit
        handlers are the notebook's); idle ones are killed at once.
        """
        self._closed = True
        deadline = time.monotonic() + grace
        with self._lock:
            retiring = list(self._retiring)
        while any(k.alive() for k in retiring) and time.monotonic() < deadline:
            time.sleep(0.01)
        with self._lock:
            live = list(self._live)
            self._spare.clear()
            self._parked.clear()
        for kernel in live:
            kernel.signal(signal.SIGKILL)
        for server in self.launcher.idle_servers(set(), 0):
            server.close()
        for kernel in live:
            kernel.remove_files()
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
        self.launcher.close()

    def live_kernels(self) -> list[Kernel]:
        with self._lock:
            return list(self._live)

    # -- starting -----------------------------------------------------------------------
    def _take(self, key: Key, reuse: bool) -> Kernel | None:
        with self._lock:
            lists = [self._parked.get(key, [])] if reuse else []
            if key[0].language == "python":
                lists.append(self._spare.get(key, []))
            for kernels in lists:
                while kernels:
                    kernel = kernels.pop(0)
                    if kernel.alive():
                        return kernel
                    self._live.discard(kernel)
                    kernel.remove_files()
        return None

    async def _launch_now(
        self, spec: KernelSpec, env: dict[str, str], cwd: str, startup: StartupKey
    ) -> Kernel:
        future = self._pool().submit(self._launch, spec, env, cwd, startup)
        try:
            return await asyncio.wrap_future(future)
        except asyncio.CancelledError:
            future.add_done_callback(self._orphan)  # nobody will use what it starts
            raise

    def _launch(
        self, spec: KernelSpec, env: dict[str, str], cwd: str, startup: StartupKey
    ) -> Kernel:
        if self._closed:
            raise KernelError("the kernel pool has been shut down (the interpreter is exiting)")
        kernel = self.launcher.launch(spec, env, cwd, startup)
        with self._lock:
            self._live.add(kernel)
        if self._closed:  # shut down while this one started
            kernel.signal(signal.SIGKILL)
        self._watch()  # a fork server may have started: it ends when idle
        return kernel

    def _orphan(self, future: Future[Kernel]) -> None:
        if not future.cancelled() and future.exception() is None:
            kernel = future.result()
            kernel.signal(signal.SIGTERM)
            self._stop(kernel, 2.0)

    def _refill(self, key: Key, env: dict[str, str]) -> None:
        with self._lock:
            have = len(self._spare.get(key, ())) + self._pending.get(key, 0)
            missing = max(0, self.spares - have)
            self._pending[key] = self._pending.get(key, 0) + missing
        for _ in range(missing):
            self._pool().submit(self._launch_spare, key, dict(env))

    def _launch_spare(self, key: Key, env: dict[str, str]) -> None:
        spec, cwd, startup = key
        try:
            kernel = self._launch(spec, env, cwd, startup)
        except Exception:  # noqa: BLE001 - a task that needs a kernel will report the cause
            kernel = None
        with self._lock:
            self._pending[key] -= 1
            if kernel is not None:
                kernel.idle_since = time.monotonic()
                self._spare.setdefault(key, []).append(kernel)
        self._watch()

    def _pool(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(2, thread_name_prefix="jw-kernels")
            return self._executor

    # -- ending -------------------------------------------------------------------------
    def _stop(self, kernel: Kernel, grace: float) -> None:
        stop(kernel, grace)
        with self._lock:
            self._live.discard(kernel)
            self._retiring.discard(kernel)

    def _watch(self) -> None:
        """Make sure the janitor runs while anything idle may need ending."""
        with self._lock:
            if self._janitor is not None and self._janitor.is_alive():
                return
            self._janitor = threading.Thread(
                target=self._sweep, name="jw-kernel-janitor", daemon=True
            )
            self._janitor.start()

    def _sweep(self) -> None:
        while not self._closed:
            time.sleep(min(self.idle_seconds, 5.0) / 2)
            now = time.monotonic()
            expired: list[Kernel] = []
            with self._lock:
                for kernels in (*self._spare.values(), *self._parked.values()):
                    for kernel in [k for k in kernels if now - k.idle_since >= self.idle_seconds]:
                        kernels.remove(kernel)
                        expired.append(kernel)
                in_use = {k.server for k in self._live if k.server is not None}
                waiting = any(self._spare.values()) or any(self._parked.values())
            for kernel in expired:
                kernel.signal(signal.SIGTERM)
                self._stop(kernel, 2.0)
            for server in self.launcher.idle_servers(in_use, self.server_idle_seconds):
                server.close()
            if not waiting and not expired and not self.launcher.has_servers():
                return


def _key(kernel: Kernel) -> Key:
    return (kernel.spec, kernel.cwd, startup_env(kernel.env))


_default: KernelPool | None = None
_default_lock = threading.Lock()


def default_pool() -> KernelPool:
    global _default
    with _default_lock:
        if _default is None:
            _default = KernelPool()
        return _default
