"""Kernel names to what it takes to start them (argv, environment, language).

``python3`` always means this interpreter's ipykernel (``sys.executable``), whatever a
``python3`` kernelspec elsewhere on the machine points at: a workflow runs its notebooks with
the packages it was installed with, and so does ``python`` (jupyter_client's alias for it).
Other names are looked up with jupyter_client's kernelspec machinery; an unknown one is a
WorkflowError that lists the kernels there are.
"""

from __future__ import annotations

import os
import sys
import threading
from dataclasses import dataclass, field

from ...errors import WorkflowError

CONNECTION_FILE = "{connection_file}"
OWN_ARGS = ("-m", "ipykernel_launcher", "-f", CONNECTION_FILE)
NATIVE = "python3"
ALIASES = {"python": NATIVE}  # jupyter_client's KernelManager renames these on start


@dataclass(frozen=True)
class KernelSpec:
    """How to start one kind of kernel; ``argv`` holds the ``{connection_file}`` placeholder."""

    name: str
    argv: tuple[str, ...]
    language: str
    env: dict[str, str] = field(default_factory=dict, hash=False, compare=False)

    @property
    def own_ipykernel(self) -> bool:
        """This interpreter running ipykernel: such kernels are forked from a warm process."""
        return self.argv == (sys.executable, *OWN_ARGS)

    def command(self, connection_file: str) -> list[str]:
        return [arg.replace(CONNECTION_FILE, connection_file) for arg in self.argv]


_cache: dict[str, KernelSpec] = {}
_lock = threading.Lock()


def resolve_kernel(name: str) -> KernelSpec:
    """The spec for kernel ``name``; raises WorkflowError for an unknown name.

    ``python`` means ``python3``, as jupyter_client's KernelManager (and so papermill) reads it.
    """
    name = ALIASES.get(name, name)
    with _lock:
        spec = _cache.get(name)
        if spec is None:
            spec = _cache[name] = _lookup(name)
        return spec


def _lookup(name: str) -> KernelSpec:
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    manager = KernelSpecManager()
    try:
        found = manager.get_kernel_spec(name)
    except NoSuchKernel:
        if name == NATIVE:
            return KernelSpec(NATIVE, (sys.executable, *OWN_ARGS), "python")
        available = sorted({NATIVE, *manager.find_kernel_specs()})
        raise WorkflowError(
            f"unknown kernel '{name}' (available kernels: {', '.join(available)})"
        ) from None
    argv = tuple(_format(arg, found.resource_dir) for arg in found.argv)
    if argv and _is_this_python(argv[0]):
        argv = (sys.executable, *argv[1:])
    elif name == NATIVE:  # a python3 spec for another interpreter: use ours instead
        return KernelSpec(NATIVE, (sys.executable, *OWN_ARGS), "python")
    return KernelSpec(name, argv, found.language or "", dict(found.env or {}))


def _format(arg: str, resource_dir: str) -> str:
    # The placeholders jupyter_client fills in, but for the connection file (ours, per kernel).
    return arg.replace("{resource_dir}", resource_dir).replace("{prefix}", sys.prefix)


def _is_this_python(executable: str) -> bool:
    # jupyter_client reads these bare names as "the interpreter running me"; a path must be
    # this very executable (not resolved: another virtualenv links to the same binary).
    major, minor = sys.version_info[:2]
    if executable in {"python", f"python{major}", f"python{major}.{minor}"}:
        return True
    return os.path.abspath(executable) == os.path.abspath(sys.executable)
