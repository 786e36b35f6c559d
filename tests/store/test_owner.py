"""Owner checks: pid, host and process start time, against real processes."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

from jupyter_workflows.execution.owner import current_owner, is_alive, process_start


def test_current_owner_is_this_process() -> None:
    pid, host, start = current_owner()
    assert pid == os.getpid()
    assert host == socket.gethostname()
    assert start is not None and start.isdigit()
    assert is_alive(pid, host, start)


def test_a_reused_pid_is_not_the_owner() -> None:
    pid, host, start = current_owner()
    assert start is not None
    assert not is_alive(pid, host, str(int(start) + 1))


def test_an_unknown_start_falls_back_to_the_pid() -> None:
    pid, host, _ = current_owner()
    assert is_alive(pid, host, None)


def test_an_owner_on_another_host_counts_as_alive() -> None:
    assert is_alive(2**22 + 12345, "some-other-host", None)


def test_a_dead_and_a_zombie_process_are_gone() -> None:
    host = socket.gethostname()
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    start = process_start(child.pid)
    assert is_alive(child.pid, host, start)
    os.kill(child.pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while process_start(child.pid) is not None and is_alive(child.pid, host, start):
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert not is_alive(child.pid, host, start)  # a zombie: killed, not yet reaped
    child.wait()
    assert not is_alive(child.pid, host, start)


def test_no_pid_is_no_owner() -> None:
    assert not is_alive(0, socket.gethostname(), None)
    assert not is_alive(None, socket.gethostname(), None)
