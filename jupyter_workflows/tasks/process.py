"""Process control for task types that spawn processes.

Each attempt runs in its own session (so its own process group): a timeout or a cancellation
stops the whole tree (SIGTERM, a grace period, SIGKILL), what escaped the group included, and
the end of the leader stops the rest of its group, so that a task never leaves processes
behind or holds a run open through a grandchild that keeps a pipe. Every process of a run is
started through the run's custody (``custody.py``): it carries the run's tag, is recorded, and
ends with the run, or with the runner should the runner die first. Output is read by a
protocol rather than reader tasks: it costs no extra coroutines per process, which matters when
a workflow has a thousand small tasks.
"""

from __future__ import annotations

import asyncio
import codecs
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..execution.masking import Masker
from .base import LineSink
from .custody import ProcessCustody

# A line longer than this is cut into pieces rather than held in memory whole.
MAX_LINE_BYTES = 1 << 20
# How long to wait for pipes to close once the process group is gone (a process that escaped
# the group with setsid can hold them open forever).
PIPE_DRAIN_SECONDS = 0.5


@dataclass
class ProcessOutcome:
    pid: int
    exit_code: int
    stdout: str
    signal_name: str | None = None
    stderr_tail: list[str] = field(default_factory=list)


class _Collector(asyncio.SubprocessProtocol):
    """Splits both pipes into lines as they arrive and notes when the process exits."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        on_line: LineSink,
        keep_stdout: bool,
        masker: Masker | None = None,
    ):
        self.on_line = on_line
        self.keep_stdout = keep_stdout
        self.stdout_parts: list[str] = []
        self.stderr_tail: list[str] = []
        self.partial = {1: b"", 2: b""}
        self.exited: asyncio.Future[None] = loop.create_future()
        self.pipes_closed: asyncio.Future[None] = loop.create_future()
        self.open_pipes = 2
        # With secrets: each pipe is decoded and masked as it arrives, before it is cut into
        # lines (a secret split over two reads, or over a long line's cut, is still caught).
        self.masks = {fd: _MaskedPipe(masker) for fd in (1, 2)} if masker else None

    def pipe_data_received(self, fd: int, data: bytes) -> None:
        if self.masks is not None and fd in self.masks:
            data = self.masks[fd].feed(data)
        chunk = self.partial[fd] + data
        *lines, rest = chunk.split(b"\n")
        while len(rest) > MAX_LINE_BYTES:
            lines.append(rest[:MAX_LINE_BYTES])
            rest = rest[MAX_LINE_BYTES:]
        self.partial[fd] = rest
        for raw in lines:
            self._line(fd, raw)

    def _line(self, fd: int, raw: bytes) -> None:
        text = raw.decode("utf-8", errors="replace")
        if text.endswith("\r"):
            text = text[:-1]
        if fd == 1:
            if self.keep_stdout:
                self.stdout_parts.append(text)
            self.on_line("stdout", text)
        else:
            self.stderr_tail.append(text)
            if len(self.stderr_tail) > 20:
                del self.stderr_tail[0]
            self.on_line("stderr", text)

    def pipe_connection_lost(self, fd: int, exc: Exception | None) -> None:
        if self.masks is not None and fd in self.masks:
            self.partial[fd] += self.masks[fd].flush()
        if fd in self.partial and self.partial[fd]:
            self._line(fd, self.partial[fd])
            self.partial[fd] = b""
        if fd in (1, 2):
            self.open_pipes -= 1
            if self.open_pipes == 0 and not self.pipes_closed.done():
                self.pipes_closed.set_result(None)

    def process_exited(self) -> None:
        if not self.exited.done():
            self.exited.set_result(None)


class _MaskedPipe:
    """One pipe's bytes decoded as UTF-8 (as lines are), masked, and encoded again."""

    def __init__(self, masker: Masker):
        self.decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self.stream = masker.stream()

    def feed(self, data: bytes) -> bytes:
        return self.stream.feed(self.decoder.decode(data)).encode("utf-8")

    def flush(self) -> bytes:
        return (
            self.stream.feed(self.decoder.decode(b"", final=True)) + self.stream.flush()
        ).encode("utf-8")


async def run_process(
    argv: Sequence[str],
    *,
    cwd: str | Path | None,
    env: Mapping[str, str] | None,
    on_line: LineSink,
    kill_grace: float = 5.0,
    stdin: bytes | None = None,
    keep_stdout: bool = True,
    custody: ProcessCustody | None = None,
    masker: Masker | None = None,
) -> ProcessOutcome:
    """Run ``argv`` to completion, streaming lines to ``on_line``.

    Cancelling the calling task (a timeout, Ctrl-C, an API cancel) terminates the process
    group, and what escaped it (with ``custody``), then re-raises CancelledError.
    """
    loop = asyncio.get_running_loop()
    how = custody.spawn(env) if custody is not None else None
    spawn = asyncio.ensure_future(
        loop.subprocess_exec(
            lambda: _Collector(loop, on_line, keep_stdout, masker),
            *argv,
            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=cwd,
            env=how.env if how is not None else env,
            start_new_session=True,
        )
    )
    cancelled = False
    try:
        transport, proto = await asyncio.shield(spawn)
    except asyncio.CancelledError:
        # The process may exist already: asyncio, cancelled mid-spawn, kills only the leader
        # and then waits for its pipes, which the rest of the group holds open. Let the spawn
        # finish (milliseconds) so the group is stopped below like any other.
        try:
            transport, proto = await spawn
        except Exception:  # the spawn failed too: the cancellation is still what happened
            raise asyncio.CancelledError from None
        cancelled = True
    pid = transport.get_pid()
    if custody is not None:
        custody.started(pid)
    try:
        if cancelled:
            raise asyncio.CancelledError
        if stdin is not None:
            _feed_stdin(transport, stdin)
        await asyncio.shield(proto.exited)
    except BaseException:
        await _stop_group(pid, proto.exited, kill_grace)
        if custody is not None and how is not None:
            await custody.stop_escaped(how, kill_grace, leader=pid)
        raise
    finally:
        await _stop_leftovers(pid, kill_grace)
        await _drain(proto.pipes_closed)
        transport.close()
    returncode = transport.get_returncode()
    assert returncode is not None
    signal_name = None
    if returncode < 0:
        signal_name = signal.Signals(-returncode).name
        returncode = 128 - returncode
    return ProcessOutcome(
        pid=pid,
        exit_code=returncode,
        stdout="\n".join(proto.stdout_parts),
        signal_name=signal_name,
        stderr_tail=proto.stderr_tail,
    )


def _feed_stdin(transport: asyncio.SubprocessTransport, data: bytes) -> None:
    pipe = transport.get_pipe_transport(0)
    if pipe is None:
        return
    try:
        pipe.write(data)  # type: ignore[attr-defined]
        pipe.write_eof()  # type: ignore[attr-defined]
    except (BrokenPipeError, ConnectionResetError):
        pass  # the process did not read its input; its exit code says the rest


async def _stop_group(pid: int, exited: asyncio.Future[None], grace: float) -> None:
    """SIGTERM the group, wait up to ``grace`` for the leader, then SIGKILL."""
    signal_group(pid, signal.SIGTERM)
    try:
        await asyncio.wait_for(asyncio.shield(exited), grace)
    except asyncio.TimeoutError:
        signal_group(pid, signal.SIGKILL)
        await asyncio.shield(exited)


async def _stop_leftovers(pgid: int, grace: float) -> None:
    """End what the leader left running in its group (background jobs, daemons)."""
    if not group_alive(pgid):
        return
    signal_group(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while group_alive(pgid) and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    if group_alive(pgid):
        signal_group(pgid, signal.SIGKILL)


def signal_group(pgid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def group_alive(pgid: int) -> bool:
    """True while a live (non-zombie) process is in the group.

    ``killpg(pgid, 0)`` alone also answers for zombies, which linger where nothing reaps
    orphans, so a positive answer is confirmed from /proc.
    """
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    try:
        entries = os.scandir("/proc")
    except OSError:
        return True
    with entries:
        for entry in entries:
            if not entry.name.isdigit():
                continue
            try:
                with open(f"/proc/{entry.name}/stat", "rb") as stat:
                    fields = stat.read().rsplit(b")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == pgid and fields[0] != b"Z":
                return True
    return False


async def _drain(pipes_closed: asyncio.Future[None]) -> None:
    if pipes_closed.done():
        return
    try:
        await asyncio.wait_for(asyncio.shield(pipes_closed), PIPE_DRAIN_SECONDS)
    except asyncio.TimeoutError:
        pass
