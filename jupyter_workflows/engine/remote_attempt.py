"""One attempt of one task, run on a Dask worker (the worker's side of ``dask_executor``).

``run_on_worker`` runs in a worker thread: it rebuilds the attempt's context, runs the task
type on that thread's event loop (kept between attempts; what an attempt leaves on it is
cancelled when the attempt ends, as ``asyncio.run`` would), and sends what the attempt says
back to the engine as Dask events on the executor's topic, each tagged with the attempt's Dask
key: ``started`` (where), batches of output ``lines`` (at most every 0.1 s, so a chatty task
costs few messages), ``progress``. It checks every 0.1 s whether the engine cancelled the
attempt (the task's state on this worker turns ``cancelled``) and then cancels the task type,
which stops the attempt's process tree here as it would locally.
The ``TaskResult`` goes back as the task's value.

Only plain data crosses: the pydantic task model, the environment, the template scope (all
picklable); the task type itself is looked up in the worker's registry, so a plugin's type
must be installed on the workers too.
"""

from __future__ import annotations

import asyncio
import multiprocessing.util
import os
import shutil
import socket
import stat
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..definition.model import TaskBase
    from ..definition.templates import Scope
    from ..tasks.base import TaskResult

FLUSH_EVERY = 0.1  # seconds between batches of output lines sent to the engine
CANCEL_CHECK = 0.1  # seconds between checks whether the engine cancelled the attempt
_GONE = frozenset({"cancelled", "released", "forgotten", "error"})


@dataclass
class RemoteAttempt:
    """What a worker needs to run one attempt."""

    topic: str  # the Dask event topic the engine listens on (the key says which attempt)
    type_name: str
    task: TaskBase
    execution_id: str
    task_id: str
    attempt: int
    project_root: str
    env: dict[str, str]  # the attempt's environment where it differs from ``scope.env``
    unset: list[str]  # names in ``scope.env`` the attempt's environment does not have
    scope: Scope
    artifacts_dir: str
    kill_grace: float
    timeout: float | None


class _Sender:
    """Sends the attempt's events to the engine, output lines in batches."""

    def __init__(self, worker: Any, topic: str, key: str):
        self.worker, self.topic, self.key = worker, topic, key
        self.lines: list[tuple[str, str]] = []
        self.lock = threading.Lock()
        self.last_flush = time.monotonic()

    def send(self, message: dict[str, Any]) -> None:
        message["key"] = self.key
        self.worker.log_event(self.topic, message)

    def line(self, stream: str, line: str) -> None:
        with self.lock:
            self.lines.append((stream, line))
        if time.monotonic() - self.last_flush >= FLUSH_EVERY:
            self.flush()

    def flush(self) -> None:
        with self.lock:
            lines, self.lines = self.lines, []
        self.last_flush = time.monotonic()
        if lines:
            self.send({"what": "lines", "lines": lines})

    def progress(self, step: int, total: int | None, label: str | None, status: str) -> None:
        self.flush()  # lines before the step they belong to
        self.send({"what": "progress", "progress": [step, total, label, status]})


def run_on_worker(attempt: RemoteAttempt) -> TaskResult:
    """Run ``attempt`` here; the Dask task's value is its ``TaskResult``."""
    from distributed import get_worker

    worker = get_worker()
    key = worker.get_current_task()
    sender = _Sender(worker, attempt.topic, str(key))
    sender.send({"what": "started", "worker": worker.address, "host": socket.gethostname()})

    def cancelled() -> bool:
        task = worker.state.tasks.get(key)
        return task is None or task.state in _GONE

    loop = _event_loop()
    asyncio.set_event_loop(loop)
    try:
        return loop.run_until_complete(_run(attempt, sender, cancelled))
    finally:
        try:
            _cancel_leftovers(loop)
        finally:
            asyncio.set_event_loop(None)
            sender.flush()


_loops = threading.local()


def _event_loop() -> asyncio.AbstractEventLoop:
    """This worker thread's event loop: made once, not per attempt (``asyncio.run`` makes
    and closes one each time, about 1 ms of a short attempt)."""
    loop: asyncio.AbstractEventLoop | None = getattr(_loops, "loop", None)
    if loop is None or loop.is_closed():
        loop = _loops.loop = asyncio.new_event_loop()
    return loop


def _cancel_leftovers(loop: asyncio.AbstractEventLoop) -> None:
    """Cancel what the attempt left running on the loop, so nothing reaches the next one."""
    leftovers = asyncio.all_tasks(loop)
    if not leftovers:
        return
    for task in leftovers:
        task.cancel()
    loop.run_until_complete(asyncio.gather(*leftovers, return_exceptions=True))


async def _run(attempt: RemoteAttempt, sender: _Sender, cancelled: Any) -> TaskResult:
    from ..execution.masking import Masker
    from ..execution.states import State
    from ..tasks.base import TaskContext, TaskResult
    from ..tasks.custody import RunCustody
    from ..tasks.registry import get_task_type

    task_type = get_task_type(attempt.type_name)
    output_file = _workdir() / f"{uuid.uuid4().hex}.out"
    # The attempt's processes are this worker's to keep: tagged, watched by the worker's own
    # guardian (so they die with the worker, even of SIGKILL), ended when the attempt ends.
    custody = RunCustody(attempt.execution_id)
    try:
        env = {**attempt.scope.env, **attempt.env, "WORKFLOW_OUTPUT": str(output_file)}
        for name in attempt.unset:
            env.pop(name, None)
        env.update(custody.environment())
        ctx = TaskContext(
            execution_id=attempt.execution_id,
            task_id=attempt.task_id,
            attempt=attempt.attempt,
            project_root=Path(attempt.project_root),
            env=env,
            scope=attempt.scope,
            emit_line=sender.line,
            output_file=output_file,
            artifacts_dir=Path(attempt.artifacts_dir),
            emit_progress=sender.progress,
            kill_grace=attempt.kill_grace,
            timeout=attempt.timeout,
            custody=custody.attempt(attempt.task_id, attempt.attempt),
            masker=Masker(attempt.scope.secrets.values()) or None,
        )
        job = asyncio.ensure_future(task_type.run(attempt.task, ctx))
        try:
            while not job.done():
                await asyncio.wait({job}, timeout=CANCEL_CHECK)
                if sender.lines:
                    sender.flush()
                if not job.done() and cancelled():
                    job.cancel()  # the task type stops its process tree, then re-raises
                    await asyncio.gather(job, return_exceptions=True)
                    return TaskResult(status=State.CANCELLED, exit_code=None, error="cancelled")
            return job.result()
        finally:
            await task_type.after_run()  # kernels and the like belong to this loop
            await custody.close(attempt.kill_grace)
    finally:
        output_file.unlink(missing_ok=True)


_workdirs: dict[int, Path] = {}


def _workdir() -> Path:
    """A private folder for the attempts' ``$WORKFLOW_OUTPUT`` files (each attempt's file has a
    name of its own and is removed when the attempt ends).

    Not a folder per attempt: making and removing one cost more than running a short command
    (about 2 ms on a busy machine). Not one per process either: a worker killed by a signal
    would leave its folder behind, and workers come and go. It is this user's
    ``jupyter-workflows-outputs-UID`` in the temporary folder, kept like ``tmux-UID``; should
    that name be taken by anything but this user's private folder, a fresh one of this
    process's own.
    """
    pid = os.getpid()
    folder = _workdirs.get(pid)
    if folder is not None and folder.is_dir():
        return folder
    folder = Path(tempfile.gettempdir()) / f"jupyter-workflows-outputs-{os.getuid()}"
    try:
        folder.mkdir(mode=0o700, exist_ok=True)
        info = folder.lstat()  # not a symlink someone planted
        private = (
            stat.S_ISDIR(info.st_mode)
            and info.st_uid == os.getuid()
            and not info.st_mode & (stat.S_IRWXG | stat.S_IRWXO)
        )
    except OSError:
        private = False
    if not private:
        folder = Path(tempfile.mkdtemp(prefix="jupyter-workflows-outputs-"))
        # run at exit by a nanny's multiprocessing child (no atexit there) and a plain process
        multiprocessing.util.Finalize(
            None, shutil.rmtree, args=(folder,), kwargs={"ignore_errors": True}, exitpriority=0
        )
    _workdirs[pid] = folder
    return folder
