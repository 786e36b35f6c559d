"""The warm process that forks ipykernel kernels: run as ``python -c <this file's source>``.

Starting a kernel costs about 0.3 s of CPU, half of it imports. This process imports what
every ipykernel imports, once, then forks a kernel per request: each kernel is still a new
process with nothing of another notebook in it, but it starts in about a third of the time.
It imports nothing of jupyter_workflows (kernels must not see our modules) and, being run
with ``-c``, has no script directory on ``sys.path`` (so nothing of ours shadows a user's
module); its own working directory is an empty runtime folder.

Protocol: after the imports it writes ``{"ready": PID}``; then one JSON request per line on
stdin (``args``, ``env``, ``cwd``, ``log``) gets one JSON line back, ``{"pid": N}`` or
``{"error": "..."}``. End of stdin (the runner has gone) ends this process, and the kernels
notice: their ``JPY_PARENT_PID`` is this process, which ipykernel polls.
"""

import ctypes
import json
import os
import signal
import sys
import threading

LATER_IMPORTS = (
    "ipykernel.debugger",
    "IPython.core.completerlib",
    "IPython.core.debugger",
    "IPython.core.logger",
    "IPython.core.oinspect",
    "IPython.extensions.storemagic",
    "sqlite3",
    "tornado.gen",
    "tornado.locks",
    "tornado.queues",
    "tornado.platform.asyncio",
)


def _warm():
    """Import what every kernel imports; returns the path of ipykernel_launcher (argv[0])."""
    import importlib.util

    import ipykernel.ipkernel  # noqa: F401  (IPython, zmq, tornado, jupyter_client)
    import ipykernel.kernelapp  # noqa: F401
    import ipykernel.zmqshell  # noqa: F401

    # What a kernel imports while it starts (debugpy alone is 140 modules); optional ones may
    # be missing, as they may be for the kernel itself.
    for name in LATER_IMPORTS:
        try:
            importlib.import_module(name)
        except ImportError:
            pass
    spec = importlib.util.find_spec("ipykernel_launcher")
    return spec.origin if spec is not None and spec.origin else "ipykernel_launcher"


def _serve(launcher):
    """Answer requests; returns a request only in a forked child (which then runs it)."""
    # Exited kernels are reaped by the system; the runner watches them by pid.
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C belongs to the runner
    reply: dict = {"ready": os.getpid(), "threads": threading.active_count()}
    while True:
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()  # nothing may sit in the buffer when we fork
        line = sys.stdin.readline()
        if not line:
            return None
        request = json.loads(line)
        request["launcher"] = launcher
        request["server"] = os.getpid()
        try:
            pid = os.fork()
        except OSError as exc:
            reply = {"error": f"fork failed: {exc}"}
            continue
        if pid == 0:
            return request
        reply = {"pid": pid}


def _die_with_parent(server):
    """SIGKILL this process when the server (pid ``server``) dies, which it does with the
    runner: a kernel never outlives its runner, even one killed with SIGKILL. Linux only;
    elsewhere ipykernel's parent poller still ends it within a second."""
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return
    prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    if os.getppid() != server:  # the server died before the line above took effect
        os.kill(os.getpid(), signal.SIGKILL)


def _become_kernel(request):
    """In the child: detach, take the task's directory and environment, run ipykernel."""
    _die_with_parent(request["server"])
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    os.setsid()  # its own process group, so that a timeout stops the kernel and its children
    log = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(null)
    os.close(log)
    sys.stdin = open(os.devnull)  # noqa: SIM115 - the old object may hold read-ahead requests
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    os.environ["JPY_PARENT_PID"] = str(os.getppid())
    import time

    time.tzset()  # TZ may differ from this process's
    # What `python -m ipykernel_launcher` would have: the working directory first on sys.path.
    if sys.path and sys.path[0] == "":
        sys.path[0] = os.getcwd()
    # ipykernel read JPY_PARENT_PID when this server imported it: pass it explicitly, so the
    # kernel ends when this server does (which ends when the runner does).
    parent = f"--IPKernelApp.parent_handle={os.getppid()}"
    sys.argv = [request["launcher"], *request["args"], parent]

    from ipykernel.kernelapp import IPKernelApp

    IPKernelApp.launch_instance()
    _exit()


def _exit():
    """End as an interpreter does, minus tearing down 600 modules one by one.

    What a notebook can notice of its kernel's exit still happens: non-daemon threads are
    waited for, atexit handlers run (IPython's empties the namespace, which closes the files
    it held), cycles are collected, streams flushed. Module teardown, about 40% of a short
    kernel's CPU time, is skipped.
    """
    import atexit
    import gc
    import threading

    threading._shutdown()  # type: ignore[attr-defined]  # what the interpreter does first
    atexit._run_exitfuncs()
    gc.collect()
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        try:
            stream.flush()  # type: ignore[union-attr]
        except Exception:
            pass
    os._exit(0)


def main():
    import gc

    launcher = _warm()
    # What is imported now lives as long as every kernel: out of the collector's sight, a
    # kernel's collections (and its exit's) skip it, and its pages stay shared after forks.
    gc.collect()
    gc.freeze()
    request = _serve(launcher)
    if request is not None:
        _become_kernel(request)  # the interpreter then ends as a kernel would (atexit and all)


main()
