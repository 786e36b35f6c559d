"""A task's connection to its kernel: readiness, setup code, shutdown. One client per task.

Readiness is checked here rather than with jupyter_client's ``wait_for_ready``, which always
waits 0.2 s for IOPub to fall quiet: a kernel_info request answered on the shell channel
*and* seen on IOPub (whose subscription is what takes time to connect) means ready.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from .kernels import Kernel, KernelError

Getter = Callable[..., Awaitable[dict[str, Any]]]
POLL = 0.25  # how often a wait checks that the kernel still lives

_context: Any = None
_context_lock = threading.Lock()


def zmq_context() -> Any:
    """One asyncio zmq context for the process (sockets, not contexts, belong to a loop)."""
    global _context
    with _context_lock:
        if _context is None:
            import zmq
            import zmq.asyncio

            _context = zmq.asyncio.Context()
            # A socket that connects before its kernel listens retries after this many ms
            # (zmq's default, 100 ms, would be most of a pre-started kernel's head start).
            _context.setsockopt(zmq.RECONNECT_IVL, 10)
        return _context


async def connect(kernel: Kernel, timeout: float) -> tuple[Any, dict[str, Any]]:
    """A started AsyncKernelClient for ``kernel`` once the kernel answers, and the kernel's
    ``language_info`` (from that answer); KernelError if it does not answer."""
    from jupyter_client.asynchronous import AsyncKernelClient

    client = AsyncKernelClient(context=zmq_context())
    client.load_connection_file(str(kernel.connection_file))
    client.start_channels(hb=False, stdin=False)
    try:
        deadline = time.monotonic() + timeout
        while True:
            msg_id = client.kernel_info()
            info = await reply(client.get_shell_msg, msg_id, kernel, deadline, "starting")
            if await _seen_on_iopub(client, msg_id, 0.05):
                return client, dict(info["content"].get("language_info") or {})
    except BaseException:
        client.stop_channels()
        raise


async def reply(
    get: Getter, msg_id: str, kernel: Kernel, deadline: float | None, doing: str
) -> dict[str, Any]:
    """The reply to ``msg_id`` from one channel; KernelError if the kernel dies or is late."""
    while True:
        try:
            msg = await get(timeout=POLL)
        except queue.Empty:
            if not kernel.alive():
                raise KernelError(died(kernel, doing)) from None
            if deadline is not None and time.monotonic() > deadline:
                late = f"kernel '{kernel.spec.name}' did not answer while {doing}"
                raise KernelError(late) from None
            continue
        if msg["parent_header"].get("msg_id") == msg_id:
            return msg


def died(kernel: Kernel, doing: str) -> str:
    tail = kernel.log_tail()
    return f"kernel '{kernel.spec.name}' exited while {doing}" + (f": {tail}" if tail else "")


async def _seen_on_iopub(client: Any, msg_id: str, wait: float) -> bool:
    end = time.monotonic() + wait
    while (left := end - time.monotonic()) > 0:
        try:
            msg = await client.get_iopub_msg(timeout=left)
        except queue.Empty:
            return False
        if msg["parent_header"].get("msg_id") == msg_id:
            return True
    return False


async def run_silently(client: Any, kernel: Kernel, code: str) -> None:
    """Run setup code outside the notebook (no outputs, no history, no execution count)."""
    msg_id = client.execute(
        code, silent=True, store_history=False, allow_stdin=False, stop_on_error=False
    )
    msg = await reply(client.get_shell_msg, msg_id, kernel, None, "being prepared")
    content = msg["content"]
    if content.get("status") != "ok":
        raise KernelError(
            f"could not prepare kernel '{kernel.spec.name}': "
            f"{content.get('ename')}: {content.get('evalue')}"
        )


def request_shutdown(client: Any) -> None:
    """Ask the kernel to shut down and close the client, without waiting for either.

    Whoever retires the kernel waits for its exit and kills it if the request got lost.
    """
    client.shutdown()
    _close_delivering(client, client.control_channel)


def request_reset(client: Any) -> None:
    """Empty a kernel's namespace for its next notebook and close the client, unwaited.

    The kernel does it while the engine moves on; the next notebook's requests queue behind.
    """
    code = setup_code({}, {}, None, reset=True)
    client.execute(code, silent=True, store_history=False, allow_stdin=False, stop_on_error=False)
    _close_delivering(client, client.shell_channel)


def _close_delivering(client: Any, channel: Any) -> None:
    # With a linger zmq still delivers the last request after the socket is closed (closing
    # with jupyter_client's linger 0 can drop it).
    if channel.socket is not None:
        channel.socket.close(linger=1000)
        channel.socket = None
    client.stop_channels()


def setup_code(
    current: Mapping[str, str], wanted: Mapping[str, str], cwd: str | None, reset: bool
) -> str | None:
    """Python that brings a pre-started or reused kernel to the task's state; None if nothing.

    The environment is set through ``os.environ`` (the kernel was started with an earlier
    task's), ``cwd`` is restored for a reused kernel, and ``reset`` empties its namespace the
    way ``%reset -f`` does, in a new history session (the execution count restarts at 1).
    It runs in a function so that it leaves no names behind.
    """
    changed = {k: v for k, v in wanted.items() if current.get(k) != v}
    removed = sorted(k for k in current if k not in wanted)
    if not (changed or removed or cwd or reset):
        return None
    body = ["import os, sys, time"]
    if reset:
        body += [
            # %reset -f, plus a new history session (so the execution count restarts at 1)
            "get_ipython().reset(new_session=True)",
            "plt = sys.modules.get('matplotlib.pyplot')",
            "if plt is not None: plt.close('all')",
        ]
    if removed:
        body.append(f"for name in {removed!r}: os.environ.pop(name, None)")
    if changed:
        body.append(f"os.environ.update({dict(changed)!r})")
    if "TZ" in changed or "TZ" in removed:
        body.append("time.tzset()")
    if cwd is not None:
        body.append(f"os.chdir({cwd!r})")
    lines = "\n".join("    " + line for line in body)
    # pop, not del: a reset has already removed the function from the namespace.
    return f"def __jw_setup():\n{lines}\n__jw_setup()\nglobals().pop('__jw_setup', None)\n"
