"""Validators of the format's models, kept between processes.

Building a model's validator is most of what checking a small workflow costs: pydantic writes
the core schema of the workflow model and of each task type used (~20 ms), and the first build
in a process imports ``importlib.metadata`` and reads every installed distribution's entry
points looking for pydantic plugins (~25 ms in an environment with Jupyter). A ``workflow run``
from cron paid both on every start. The validator pydantic-core builds from that schema pickles
as the schema itself, so it is kept in the user's cache folder after the first build and
restored in about a millisecond.

A kept validator names every module whose classes and functions it refers to (the model's own,
pydantic's, a plugin's task module) with the path, size and modification time of its file, and
is restored only when each of those modules is imported from that very file, unchanged: an
edited model, another pydantic, another checkout on ``PYTHONPATH`` or another virtual
environment is a miss, and the model is built as before (then kept). A file that is not the
user's own, or is writable by others, is never read: unpickling runs code.

The folder is ``$WORKFLOW_CACHE_DIR`` if set (empty: keep nothing), else
``$XDG_CACHE_HOME/jupyter-workflows`` or ``~/.cache/jupyter-workflows``. Anything that goes
wrong here (no home, a full disk, a corrupt file) only costs the build.
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import sys
import threading
import time
import types
from pathlib import Path
from typing import Any

FORMAT = 1
_lock = threading.Lock()
# A module file changed after this moment may not be what this process imported: not kept.
_IMPORTED_BY = time.time_ns()


def folder() -> Path | None:
    """Where validators are kept, or None when keeping them is switched off."""
    configured = os.environ.get("WORKFLOW_CACHE_DIR")
    if configured is not None:
        return Path(configured) / "validators" if configured else None
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    if base.startswith("~"):  # no home to expand
        return None
    return Path(base) / "jupyter-workflows" / "validators"


def restore(cls: Any) -> bool:
    """Give ``cls`` (a pydantic model with a deferred build) its kept validator; True if it
    had one that still matches the code."""
    path = _entry_path(cls)
    if path is None:
        return False
    try:
        with open(path, "rb") as file:
            stat = os.fstat(file.fileno())
            if stat.st_uid != os.geteuid() or stat.st_mode & 0o022:
                return False
            header = pickle.load(file)  # plain data: checked before anything is imported
            if not _current(header, cls):
                return False
            schema, validator, serializer = pickle.load(file)
    except Exception:  # a missing, partial or foreign file is a miss, whatever it raises
        return False
    with _lock:
        if not cls.__pydantic_complete__:
            cls.__pydantic_core_schema__ = schema
            cls.__pydantic_validator__ = validator
            cls.__pydantic_serializer__ = serializer
            cls.__pydantic_complete__ = True
    return True


def keep(cls: Any) -> None:
    """Keep the validator ``cls`` was just built with, for the processes that follow."""
    path = _entry_path(cls)
    if path is None:
        return
    temporary: Path | None = None
    try:
        payload = io.BytesIO()
        pickler = _ModuleRecorder(payload)
        pickler.dump((cls.__pydantic_core_schema__, cls.__pydantic_validator__,
                      cls.__pydantic_serializer__))  # fmt: skip
        stamps = [_stamp(name) for name in sorted(pickler.modules)]
        if any(stamp is None or stamp[2] > _IMPORTED_BY for stamp in stamps):
            return  # refers to something without a module, or to a file edited since import
        header = {"format": FORMAT, "python": sys.version, "class": _name(cls), "modules": stamps}
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        temporary = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}")
        with open(temporary, "wb") as file:
            os.fchmod(file.fileno(), 0o600)
            pickle.dump(header, file)
            file.write(payload.getvalue())
        os.replace(temporary, path)
    except Exception:  # an unpicklable plugin model, a read-only home: just not kept
        if temporary is not None:
            try:
                temporary.unlink()
            except OSError:
                pass


class _ModuleRecorder(pickle.Pickler):
    """A pickler that notes the module of every class and function it writes by reference."""

    def __init__(self, file: io.BytesIO) -> None:
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self.modules: set[str] = set()

    def reducer_override(self, obj: Any) -> Any:
        if isinstance(obj, (type, types.FunctionType, types.BuiltinFunctionType)):
            module = getattr(obj, "__module__", None)
            if module is None or getattr(obj, "__name__", "") == "<lambda>":
                raise pickle.PicklingError(f"{obj!r} cannot be found again by name")
            self.modules.add(module)
        return NotImplemented


def _stamp(module_name: str) -> tuple[str, str | None, int, int] | None:
    module = sys.modules.get(module_name)
    if module is None:
        return None
    path = getattr(module, "__file__", None)
    if path is None:  # built in (builtins, sys): changes only with the interpreter
        return (module_name, None, 0, 0)
    stat = os.stat(path)
    return (module_name, path, stat.st_mtime_ns, stat.st_size)


def _current(header: Any, cls: Any) -> bool:
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        return False
    if header.get("python") != sys.version or header.get("class") != _name(cls):
        return False
    for name, path, mtime, size in header["modules"]:
        module = sys.modules.get(name)
        if module is None or getattr(module, "__file__", None) != path:
            return False  # not imported (restoring would import it), or from elsewhere
        if path is not None:
            stat = os.stat(path)
            if (stat.st_mtime_ns, stat.st_size) != (mtime, size):
                return False
    return True


def _name(cls: Any) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _entry_path(cls: Any) -> Path | None:
    where = folder()
    if where is None:
        return None
    module = sys.modules.get(cls.__module__)
    origin = f"{sys.version}\0{getattr(module, '__file__', '')}"
    digest = hashlib.sha256(origin.encode()).hexdigest()[:16]
    return where / f"{_name(cls)}.{digest}.pickle"
