"""What can be wrong with a store on disk, said so a user can fix it; and the index's repair.

Two kinds of fault:

- the store cannot be used as it is (``StoreUnavailable``): a file where the store's folder or
  ``journals/`` must be, a folder where ``index.lock`` or ``index.duckdb`` must be, a folder
  that is not writable. The message names the culprit and what to do.
- the index cannot be opened or read (cut short, zero bytes, garbage, damaged blocks, a bad
  write-ahead log): the index is derived from the journals, so it is set aside as
  ``index.duckdb.corrupt`` and rebuilt. Faults of the surroundings (a full disk, another
  program holding DuckDB's own lock, permissions) are reported instead: rebuilding would not
  help and would throw away a good index.
"""

from __future__ import annotations

import errno
import logging
import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import StoreError, StoreUnavailable, StoreWriteFailed
from .schema import migrate

if TYPE_CHECKING:
    import duckdb

log = logging.getLogger(__name__)

ELSEWHERE = "choose another folder with storagePath in workflows/config.json"
ASIDE_SUFFIX = ".corrupt"

# DuckDB's words for a file that is not (or no longer) a database it can read.
_DAMAGE = (
    "not a valid DuckDB database",
    "Could not read enough bytes",
    "Corrupt database",
    "checksum",
    "Serialization Error",
)
# DuckDB's words for a fault of the surroundings, which a rebuild cannot mend.
_SURROUNDINGS = (
    "Could not set lock",
    "Conflicting lock",
    "No space left",
    "Disk quota",
    "Permission denied",
    "Operation not permitted",
    "Read-only file system",
    "Too many open files",
    "Out of Memory",
    "Cannot allocate memory",
)


class IndexSetAside(StoreError):
    """The index was found damaged while in use and set aside: the next session rebuilds it."""


# -- the store's folders ---------------------------------------------------------------------


def layout_fault(store: Path, journals: Path, files: Iterable[Path]) -> None:
    """Raise StoreUnavailable if a file stands where a folder of the store must be (the store
    itself, a folder above it, ``journals/``) or a folder where one of ``files`` must be."""
    existing = store
    while not os.path.lexists(existing) and existing.parent != existing:
        existing = existing.parent
    if not existing.is_dir():
        raise StoreUnavailable(
            store,
            existing,
            f"{existing} is a file, not a folder; move it away, or {ELSEWHERE}",
        )
    if os.path.lexists(journals) and not journals.is_dir():
        raise StoreUnavailable(
            store,
            journals,
            f"{journals} is not a folder (the store keeps its journals there); move it away",
        )
    for path in files:
        if path.is_dir():
            raise StoreUnavailable(
                store,
                path,
                f"{path} is a folder where the store keeps a file; remove it (the store makes "
                "it again)",
            )


def creation_fault(store: Path, folder: Path, exc: OSError) -> StoreError:
    """What to say when ``folder`` of ``store`` cannot be created."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return StoreWriteFailed(folder, exc)
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        existing = folder
        while not existing.exists() and existing.parent != existing:
            existing = existing.parent
        return not_writable(store, existing)
    return StoreUnavailable(
        store, folder, f"cannot create {folder}: [Errno {exc.errno}] {exc.strerror}; {ELSEWHERE}"
    )


def not_writable(store: Path, folder: Path) -> StoreUnavailable:
    """``folder`` of ``store`` cannot be written: say whether the file system is read-only."""
    try:
        read_only = bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
    except OSError:
        read_only = False
    how = (
        "is on a read-only file system"
        if read_only
        else "is not writable by this user (its permissions, or an immutable flag)"
    )
    return StoreUnavailable(store, folder, f"{folder} {how}; make it writable, or {ELSEWHERE}")


# -- the index -------------------------------------------------------------------------------


def looks_damaged(exc: BaseException) -> bool:
    """Whether a DuckDB error says the index file itself is damaged."""
    text = str(exc)
    return any(mark in text for mark in _DAMAGE) and not _surroundings(exc)


def _surroundings(exc: BaseException) -> bool:
    text = str(exc)
    return any(mark in text for mark in _SURROUNDINGS)


def open_index(path: Path) -> duckdb.DuckDBPyConnection:
    """A read-write connection to the index at ``path`` with its schema migrated.

    An index that cannot be opened for any reason but its surroundings is set aside and a new
    one made in its place (empty: the caller's refresh reads every journal into it).
    """
    import duckdb

    try:
        return _connect(path)
    except duckdb.Error as exc:
        if _surroundings(exc):
            raise StoreError(f"cannot open {path}: {_first_line(exc)}") from exc
        set_aside(path, exc)
        try:
            return _connect(path)
        except duckdb.Error as again:
            raise StoreError(f"cannot rebuild {path}: {_first_line(again)}") from again


def _connect(path: Path) -> duckdb.DuckDBPyConnection:
    import duckdb

    con = duckdb.connect(str(path))
    try:
        migrate(con)
    except BaseException:
        con.close()
        raise
    return con


def set_aside(path: Path, reason: BaseException) -> None:
    """Move a damaged index (and its write-ahead log) to ``<name>.corrupt``, replacing an
    older one, so the next open starts a new index. Call under the index lock."""
    aside = path.with_name(path.name + ASIDE_SUFFIX)
    moves = [(path, aside), (_wal(path), _wal(aside))]
    try:
        _wal(aside).unlink(missing_ok=True)  # an older one would be replayed onto this one
        for source, target in moves:
            try:
                os.replace(source, target)
            except FileNotFoundError:
                pass
    except OSError as exc:
        raise StoreError(
            f"the execution index {path} cannot be read ({_first_line(reason)}) nor moved aside "
            f"({exc.strerror}); delete it: it is rebuilt from the journals"
        ) from exc
    log.warning(
        "the execution index %s could not be read (%s); it was set aside as %s and is "
        "rebuilt from the journals",
        path,
        _first_line(reason),
        aside.name,
    )


def _wal(path: Path) -> Path:
    return path.with_name(path.name + ".wal")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
