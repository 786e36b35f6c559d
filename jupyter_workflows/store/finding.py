"""Which journals a refresh must read, and the archive that keeps that question cheap.

Journals of runs in progress (or finished but not yet indexed) live in ``journals/``; once a
complete journal is in the index it moves to ``journals/done/``, where it is never looked at
again, so a refresh costs a scandir of the few active journals and one small query, however
long the history. ``done/`` is read only when the index does not know it yet (a new or
rebuilt ``index.duckdb``, or a store written before the archive existed).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import duckdb

JOURNAL_SUFFIX = ".jsonl"
DONE = "done"
# The store_meta key saying every journal in done/ has been indexed by this index file.
DONE_INDEXED = "done_indexed"

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class JournalFile:
    """A journal to ingest, with its size when it was looked at."""

    execution_id: str
    path: Path
    size: int


@dataclass
class Changes:
    """What a refresh found: journals to ingest, complete ones to archive, and whether the
    archive was read in full (so the index can remember it has been)."""

    changed: list[JournalFile]
    to_archive: list[str]
    read_done: bool


def find_changed(con: duckdb.DuckDBPyConnection, journals_dir: Path) -> Changes:
    """Journals whose size differs from what was ingested (new ones included).

    A journal with its run_ended ingested never changes again (crash marking and
    ``save_execution`` ingest what they write themselves): in ``journals/`` it is only due to
    move to ``done/``; in ``done/`` it is not even listed once the index has read it.
    """
    incomplete = dict(
        con.execute("SELECT execution_id, size FROM journals WHERE NOT complete").fetchall()
    )
    active = _listing(journals_dir)
    read_done = not _done_indexed(con)
    archived = _listing(journals_dir / DONE) if read_done else {}
    candidates = {**archived, **active}  # an id in both: the active one is newer
    unknown = [eid for eid in candidates if eid not in incomplete]
    complete = dict(
        con.execute(
            "SELECT execution_id, size FROM journals WHERE complete AND execution_id IN "
            "(SELECT unnest(?::VARCHAR[]))",
            [unknown],
        ).fetchall()
        if unknown
        else []
    )
    changed, to_archive = [], []
    for eid, path in candidates.items():
        size = _size(path)
        if eid in complete:
            if path.parent != journals_dir:
                continue
            if size == complete[eid]:
                to_archive.append(eid)
                continue
            # Complete in the index, yet the active file differs: someone journaled that id
            # again. Read it rather than archive it over the record we have.
        if size and size != incomplete.get(eid):
            changed.append(JournalFile(eid, path, size))
    return Changes(changed, to_archive, read_done)


def journal_file(journals_dir: Path, execution_id: str) -> JournalFile | None:
    """The journal of one execution (active, else archived) as a JournalFile; None if it is
    missing or empty."""
    name = f"{execution_id}{JOURNAL_SUFFIX}"
    for path in (journals_dir / name, journals_dir / DONE / name):
        size = _size(path)
        if size:
            return JournalFile(execution_id, path, size)
    return None


def journal_paths(journals_dir: Path, execution_id: str) -> list[Path]:
    """Both places a journal may be (for removing it)."""
    name = f"{execution_id}{JOURNAL_SUFFIX}"
    return [journals_dir / name, journals_dir / DONE / name]


def archive(con: duckdb.DuckDBPyConnection, journals_dir: Path, changes: Changes) -> None:
    """Move complete, indexed journals into ``done/`` and remember it in the index.

    A move that fails (permissions, a full disk) only costs speed: the journal stays active
    and is found complete again next time.
    """
    ids = set(changes.to_archive)
    if changes.changed:
        rows = con.execute(
            "SELECT execution_id FROM journals WHERE complete AND execution_id IN "
            "(SELECT unnest(?::VARCHAR[]))",
            [[f.execution_id for f in changes.changed]],
        ).fetchall()
        ids |= {eid for (eid,) in rows}
    done = journals_dir / DONE
    moved = []
    for eid in sorted(ids):
        source = journals_dir / f"{eid}{JOURNAL_SUFFIX}"
        if not source.exists():
            continue  # it was ingested from done/ already
        try:
            done.mkdir(exist_ok=True)
            os.replace(source, done / source.name)
        except OSError as exc:
            log.info("cannot archive journal %s: %s", source, exc)
            continue
        moved.append(eid)
    if moved:
        con.execute(
            "UPDATE journals SET path = ? || '/' || execution_id || ? "
            "WHERE execution_id IN (SELECT unnest(?::VARCHAR[]))",
            [str(done), JOURNAL_SUFFIX, moved],
        )
    if changes.read_done:
        con.execute("INSERT OR REPLACE INTO store_meta VALUES (?, 'true')", [DONE_INDEXED])


def _done_indexed(con: duckdb.DuckDBPyConnection) -> bool:
    row = con.execute("SELECT value FROM store_meta WHERE key = ?", [DONE_INDEXED]).fetchone()
    return row is not None


def _listing(folder: Path) -> dict[str, Path]:
    try:
        entries = os.scandir(folder)
    except (FileNotFoundError, NotADirectoryError):
        return {}
    with entries:
        return {
            entry.name[: -len(JOURNAL_SUFFIX)]: Path(entry.path)
            for entry in entries
            if entry.name.endswith(JOURNAL_SUFFIX)
        }


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except (FileNotFoundError, NotADirectoryError):
        return 0
