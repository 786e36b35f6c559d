"""Looking at processes from the outside, for tests: written here, independent of the code
under test, so that a test does not ask the implementation whether the implementation worked.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Seen:
    """A process as it was seen once: its pid and start time (so a reused pid is not it)."""

    pid: int
    start: str | None

    def alive(self) -> bool:
        """Still running (not a zombie) and still the same process."""
        stat = _stat(self.pid)
        return stat is not None and stat[0] != "Z" and stat[19] == self.start


def _stat(pid: int) -> list[str] | None:
    try:
        data = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return data[data.rfind(")") + 2 :].split()


def seen(pid: int) -> Seen:
    stat = _stat(pid)
    return Seen(pid, stat[19] if stat else None)


def pids_in(folder: Path) -> list[Seen]:
    """Every pid written to a ``*.pid`` file in ``folder`` (whitespace-separated)."""
    found = []
    for path in sorted(folder.glob("*.pid")):
        found.extend(seen(int(word)) for word in path.read_text().split())
    return found


def with_env(name: str, value: str) -> list[int]:
    """Live processes whose environment sets ``name`` to ``value`` exactly."""
    wanted = f"{name}={value}".encode()
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = Path(entry.path, "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if wanted in environ and seen(int(entry.name)).alive():
            found.append(int(entry.name))
    return found


def tagged(tag: str) -> list[int]:
    """Live processes whose environment holds WORKFLOW_RUN_TAG=<tag>, or <tag>/<anything>."""
    exact, prefix = f"WORKFLOW_RUN_TAG={tag}".encode(), f"WORKFLOW_RUN_TAG={tag}/".encode()
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = Path(entry.path, "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if any(v == exact or v.startswith(prefix) for v in environ):
            stat = _stat(int(entry.name))
            if stat is not None and stat[0] != "Z":
                found.append(int(entry.name))
    return found


def children_of(pid: int) -> list[int]:
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            stat = _stat(int(entry.name))
            if stat is not None and int(stat[1]) == pid:
                found.append(int(entry.name))
    return found


def cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_text().split("\0")
    except OSError:
        return []


def wait_until(check, timeout: float, step: float = 0.01) -> float | None:
    """Seconds until ``check()`` was true, or None if it never was within ``timeout``."""
    start = time.monotonic()
    while True:
        if check():
            return time.monotonic() - start
        if time.monotonic() - start > timeout:
            return None
        time.sleep(step)


def living(processes: Iterable[Seen]) -> list[Seen]:
    return [p for p in processes if p.alive()]


def kill_all(processes: Iterable[Seen]) -> None:
    """Clean up after a failed test: never leave its processes running."""
    for process in processes:
        if process.alive():
            try:
                os.kill(process.pid, 9)
            except ProcessLookupError:
                pass


def remove_cgroup(folder: Path) -> None:
    """Kill what is in a cgroup and remove it."""
    try:
        (folder / "cgroup.kill").write_text("1")
    except OSError:
        return
    wait_until(lambda: "populated 0" in (folder / "cgroup.events").read_text(), 2)
    try:
        folder.rmdir()
    except OSError:
        pass


def parent(pid: int) -> int:
    stat = _stat(pid)
    return int(stat[1]) if stat else 0
