"""The docker task's plumbing: connecting, errors in plain words, threads feeding the loop.

The docker SDK is synchronous. Every call runs in a worker thread; lines read there reach
``ctx.emit_line`` through ``loop.call_soon_threadsafe`` (``Relay``), so the engine's loop never
blocks. A streaming call (build, pull, attach) blocks its thread until the engine sends more,
so cancelling means closing its socket from the loop (``Streams.cancel``): the read fails, the
thread ends, and the engine sees the client go (a build stops, its container is removed).
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import re
import threading
from collections.abc import Callable, Mapping
from typing import Any

from ..base import LineSink

DEFAULT_HOST = "unix:///var/run/docker.sock"
# Ordinary calls (create, inspect, remove); streams and waits have no read timeout.
API_TIMEOUT = 30
MAX_LINE_CHARS = 1 << 20
_ANSI_RE = re.compile(r"\x1b\[[0-9;]*m")


class DockerFailure(Exception):
    """A failure whose message is ready for the task's ``error``."""

    def __init__(self, message: str, *, retryable: bool = True, exit_code: int | None = None):
        super().__init__(message)
        self.retryable = retryable
        self.exit_code = exit_code


class Cancelled(Exception):
    """Raised in a worker thread that notices its attempt was cancelled."""


def engine_address(env: Mapping[str, str]) -> str:
    """Where the SDK will look for the engine: $DOCKER_HOST, the CLI context, the default."""
    host = env.get("DOCKER_HOST")
    if host:
        return host
    try:
        from docker.context.api import ContextAPI

        found = ContextAPI.kwargs_from_context(environment=dict(env)).get("base_url")
    except Exception:  # older SDKs have no such lookup; a broken context file is not ours
        found = None
    return str(found or DEFAULT_HOST)


def connect(env: Mapping[str, str]) -> Any:
    """A DockerClient for the engine ``env`` names (blocking: call it in a thread)."""
    import docker

    try:
        return docker.from_env(environment=dict(env), timeout=API_TIMEOUT)
    except docker.errors.DockerException as exc:
        raise DockerFailure(describe(exc, engine_address(env))) from None


def describe(exc: BaseException, host: str) -> str:
    """One line for an SDK, HTTP or socket error: no traceback, no request URLs."""
    import docker
    import requests

    reason = _os_reason(exc)
    if isinstance(exc, requests.exceptions.ConnectionError) or (
        isinstance(exc, docker.errors.DockerException) and "fetching server API" in str(exc)
    ):
        detail = f" ({reason})" if reason else ""
        return (
            f"cannot reach a Docker engine at {host}{detail}: is dockerd running? (set DOCKER_HOST)"
        )
    if isinstance(exc, docker.errors.APIError):
        return str(exc.explanation or exc)
    if isinstance(exc, docker.errors.DockerException):
        return f"docker client (DOCKER_HOST={host}): {exc}"
    return f"lost the connection to the Docker engine at {host}: {reason or exc}"


def _os_reason(exc: BaseException | None) -> str | None:
    """The strerror of the OSError at the bottom of a requests/urllib3 error, if any."""
    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, OSError) and exc.strerror:
            return exc.strerror
        for arg in getattr(exc, "args", ()):
            if isinstance(arg, OSError) and arg.strerror:
                return arg.strerror
            if isinstance(arg, BaseException):
                found = _os_reason(arg)
                if found:
                    return found
        exc = exc.__cause__ or exc.__context__
        seen += 1
    match = re.search(r"\[Errno \d+\] ([^'\")]+)", str(exc)) if exc else None
    return match.group(1) if match else None


class Relay:
    """Hands lines from worker threads to ``emit`` on the loop; silent once closed."""

    def __init__(self, loop: asyncio.AbstractEventLoop, emit: LineSink):
        self._loop = loop
        self._emit = emit
        self.closed = False

    def line(self, stream: str, text: str) -> None:
        """Called from a worker thread."""
        if self.closed:
            return
        with contextlib.suppress(RuntimeError):  # the loop is already closed
            self._loop.call_soon_threadsafe(self._deliver, stream, text)

    def _deliver(self, stream: str, text: str) -> None:
        if not self.closed:  # nothing after the attempt ended
            self._emit(stream, text)


class LineSplitter:
    """Turns chunks (bytes or text) of one stream into whole lines, decoding UTF-8 safely."""

    def __init__(self, on_line: Callable[[str], None]):
        self._on_line = on_line
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._partial = ""

    def feed(self, chunk: bytes | str) -> None:
        text = self._decoder.decode(chunk) if isinstance(chunk, bytes) else chunk
        *lines, rest = (self._partial + text).split("\n")
        while len(rest) > MAX_LINE_CHARS:  # a line with no end is cut, not held whole
            lines.append(rest[:MAX_LINE_CHARS])
            rest = rest[MAX_LINE_CHARS:]
        self._partial = rest
        for line in lines:
            self._on_line(line.removesuffix("\r"))

    @property
    def pending(self) -> bool:
        """Whether part of a line is waiting for its end."""
        return bool(self._partial)

    def flush(self) -> None:
        rest = self._partial + self._decoder.decode(b"", final=True)
        self._partial = ""
        if rest:
            self._on_line(rest.removesuffix("\r"))


def strip_ansi(text: str) -> str:
    return _ANSI_RE.sub("", text)


class Streams:
    """The open streaming responses of one attempt, so the loop can close them on cancel.

    ``watch(api)`` hooks the client's private ``_stream_helper`` (per instance, not the class):
    ``api.build`` and ``api.pull`` hand it their response and offer no other way to close it.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open: list[Any] = []
        self.cancelled = False
        self.container: str | None = None  # the container to remove when cancelled

    def watch(self, api: Any) -> None:
        original = api._stream_helper

        def capture(response: Any, *args: Any, **kwargs: Any) -> Any:
            self.add(response)
            return original(response, *args, **kwargs)

        api._stream_helper = capture

    def add(self, response: Any) -> None:
        """Track a response (or a CancellableStream); close it at once if already cancelled."""
        with self._lock:
            self._open.append(response)
            cancelled = self.cancelled
        if cancelled:
            _close(response)
            raise Cancelled

    def adopt(self, container_id: str) -> None:
        """Record the container to remove; if cancelled already, the caller must remove it."""
        with self._lock:
            if self.cancelled:
                raise Cancelled
            self.container = container_id

    def cancel(self) -> str | None:
        """Close every stream (from the loop); returns the container left to remove."""
        with self._lock:
            self.cancelled = True
            responses, self._open = self._open, []
            container = self.container
        for response in responses:
            _close(response)
        return container


def _close(response: Any) -> None:
    from docker.types.daemon import CancellableStream

    stream = response if isinstance(response, CancellableStream) else None
    if stream is None:
        stream = CancellableStream(iter(()), response)
    # shutdown() wakes a thread blocked in recv; an already closed socket is fine.
    with contextlib.suppress(Exception):
        stream.close()
