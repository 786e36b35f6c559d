"""The execution store: journals written by runners, a DuckDB index read by everyone else.

Layout of the storage directory::

    journals/<execution_id>.jsonl   one per execution, appended by its runner only
    journals/done/                  complete journals already in the index (never read again)
    requests/<execution_id>.cancel  a request to the run's owner to cancel it (``requests``)
    index.duckdb                    the query index, rebuilt from the journals as needed
    index.lock                      flock'ed around every open of index.duckdb

No process keeps ``index.duckdb`` open between operations: each one takes the lock, opens,
works, closes and releases, so cron runs, daemons, kernels and servers can share a store.

Reading never creates a store: until something is recorded (no index, no journals folder),
reads see an empty history and leave the directory as it is (not even a lock file).

Faults: a store that cannot be used as it is (a file where a folder must be, a folder where the
lock or the index must be, a folder that is not writable) raises ``StoreUnavailable`` naming the
culprit and what to do, from every read and from ``open_journal`` before a run starts. An index
that cannot be opened (cut short, zero bytes, damaged) is set aside as ``index.duckdb.corrupt``
and rebuilt from the journals by the same read: the journals are the record.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, TypeVar

from ..errors import StoreError
from ..execution.records import Execution
from .crash import mark_crashed, orphaned_runs
from .faults import (
    IndexSetAside,
    creation_fault,
    layout_fault,
    looks_damaged,
    not_writable,
    open_index,
    set_aside,
)
from .finding import JOURNAL_SUFFIX, Changes, archive, find_changed, journal_file, journal_paths
from .ingest import ingest, ingest_tolerant
from .journal import JournalWriter
from .lock import DEFAULT_TIMEOUT, IndexLock
from .requests import REQUESTS, remove_request, request_path, stale_requests
from .schema import migrate
from .synth import execution_events
from .view import Reads, StoreView

if TYPE_CHECKING:
    import duckdb
    import pyarrow

    from .cleanup import CleanupReport
    from .models import CacheEntry

P = ParamSpec("P")
T = TypeVar("T")


class ExecutionStore(Reads):
    """History of executions in one storage directory; nothing is created until needed.

    The reads (``history``, ``get_execution``, ``logs``, metrics...) are ``Reads`` methods:
    each call brings the index up to date and reads it under the lock; ``snapshot()`` gives
    several reads in a row one open of the index.
    """

    def __init__(self, path: str | Path, *, lock_timeout: float = DEFAULT_TIMEOUT):
        self.path = Path(path)
        self.lock_timeout = lock_timeout

    def exists(self) -> bool:
        """Whether anything was recorded here: the index or the journals folder exists.

        Raises StoreUnavailable when the place cannot hold a store (see ``check_layout``),
        so that every reader reports it rather than an empty history.
        """
        self.check_layout()
        return self.index_path.exists() or self.journals_dir.is_dir()

    def check_layout(self) -> None:
        """Raise StoreUnavailable if something stands where the store's parts must go: a file
        where the store's folder (or one above it) or ``journals/`` must be, a folder where
        ``index.lock`` or ``index.duckdb`` must be. A few ``stat`` calls; creates nothing."""
        layout_fault(self.path, self.journals_dir, (self.lock_path, self.index_path))

    def check_writable(self) -> None:
        """Make sure runs can be recorded and indexed here, creating the store's folders:
        StoreUnavailable otherwise, naming the culprit and what to do. A run calls this
        before any task starts (``open_journal`` does), so nothing runs unrecorded."""
        self.check_layout()
        for folder in (self.path, self.journals_dir):
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise creation_fault(self.path, folder, exc) from exc
            if not os.access(folder, os.W_OK | os.X_OK):
                raise not_writable(self.path, folder)

    @property
    def journals_dir(self) -> Path:
        return self.path / "journals"

    @property
    def index_path(self) -> Path:
        return self.path / "index.duckdb"

    @property
    def lock_path(self) -> Path:
        return self.path / "index.lock"

    @property
    def requests_dir(self) -> Path:
        return self.path / REQUESTS

    def cancel_request_path(self, execution_id: str) -> Path:
        """Where a request to cancel ``execution_id`` is written, and its owner looks for it."""
        return request_path(self.path, self.journal_path(execution_id).stem)

    def cancel(self, id_or_prefix: str, *, by: str = "api", wait: float = 5.0) -> Execution:
        """Cancel a running execution, whichever process runs it (CLI, cron, a server, a
        kernel): a request its owner sees within a second; it stops the run's tasks (their
        process trees too) and records it ``cancelled`` with ``cancelled_by`` = ``by``.

        Waits up to ``wait`` seconds for that record and returns the execution as recorded
        then (``status`` still ``running`` if the owner did not end it in time; ``wait=0``
        returns at once). Raises ExecutionNotFound, AmbiguousExecutionId (``id_or_prefix``
        names no single execution) or ExecutionNotRunning (it has ended, or its owner had
        died: then it is recorded as crashed).
        """
        from .requests import cancel_execution

        return cancel_execution(self, id_or_prefix, by=by, wait=wait)

    def artifacts_dir(self, execution_id: str) -> Path:
        """Where an execution keeps its files (executed notebooks...); not created here."""
        return self.path / "artifacts" / self.journal_path(execution_id).stem

    def journal_path(self, execution_id: str) -> Path:
        """Where the journal of ``execution_id`` lives (StoreError if the id is no file name)."""
        if (
            not execution_id
            or execution_id.startswith(".")
            or any(c in execution_id for c in "/\\\0")
        ):
            raise StoreError(f"not a valid execution id: {execution_id!r}")
        return self.journals_dir / f"{execution_id}{JOURNAL_SUFFIX}"

    def journal_location(self, execution_id: str) -> Path | None:
        """Where the journal of ``execution_id`` is now: ``journals/`` while it is written,
        ``journals/done/`` once complete and indexed; None if it has none."""
        self.journal_path(execution_id)  # validates the id
        found = journal_file(self.journals_dir, execution_id)
        return None if found is None else found.path

    def open_journal(self, execution_id: str) -> JournalWriter:
        """A writer appending to the journal of ``execution_id`` (the runner's event sink).

        StoreUnavailable when the store cannot be used (``check_writable``), StoreWriteFailed
        when the journal cannot be created (a full disk).
        """
        path = self.journal_path(execution_id)
        self.check_writable()
        if journal_paths(self.journals_dir, execution_id)[1].exists():
            # Finished and archived: appending a second run to it would be lost on the next
            # refresh (the index knows it complete). Ids are unique; this is a caller's slip.
            raise StoreError(f"execution {execution_id} already exists and has ended")
        return JournalWriter(path)

    # -- writing -----------------------------------------------------------------------------

    def refresh(self) -> None:
        """Ingest every changed journal and mark runs whose runner died as crashed."""
        with self._session(create=False):
            pass

    def record(self, execution_id: str) -> None:
        """Ingest the journal of ``execution_id`` now, without looking at any other."""
        self.journal_path(execution_id)  # validates the id
        if journal_file(self.journals_dir, execution_id) is None:
            return  # nothing written yet: no need for the lock
        with self._session(refresh=False) as con:
            # Looked up again under the lock: another reader may have archived it meanwhile.
            file = journal_file(self.journals_dir, execution_id)
            if file is not None:
                ingest(con, [file])
                archive(con, self.journals_dir, Changes([file], [], read_done=False))

    def save_execution(self, execution: Execution, *, index: bool = True) -> None:
        """Write ``execution`` as a complete journal (replacing any) and ingest it.

        ``index=False`` (for a new execution only) leaves the ingesting to the next read, as
        runners do: no DuckDB work, so an event loop can record without stalling.
        """
        path = self.journal_path(execution.id)
        temp = path.with_name(f".{path.name}.tmp")  # not *.jsonl: refreshes ignore it
        temp.unlink(missing_ok=True)
        with JournalWriter(temp) as write:
            for event in execution_events(execution):
                write(event)
        if not index:
            if journal_file(self.journals_dir, execution.id) is not None:
                temp.unlink()
                raise StoreError(f"execution {execution.id} exists: it cannot be saved unindexed")
            path.parent.mkdir(parents=True, exist_ok=True)
            os.replace(temp, path)
            return
        with self._session(refresh=False) as con:
            os.replace(temp, path)
            for old in journal_paths(self.journals_dir, execution.id)[1:]:
                old.unlink(missing_ok=True)  # an archived copy would be the older record
            file = journal_file(self.journals_dir, execution.id)
            if file is not None:
                ingest(con, [file], reset=True)

    # -- reading -----------------------------------------------------------------------------

    @contextmanager
    def snapshot(self) -> Iterator[StoreView]:
        """One consistent, up-to-date view for several reads in a row (one lock, one open).

        Meant for short bursts (the alert rules of a finished run): writers of the index wait
        while it is open, runners never do (they only append to their journals).
        """
        with self._session(create=False) as con:
            yield StoreView(con)

    def cleanup(self, older_than: datetime, *, dry_run: bool = False) -> CleanupReport:
        """Remove finished executions started before ``older_than``: their index rows, journals
        and artifacts (executed notebooks...). ``dry_run`` only reports what would go."""
        from .cleanup import CleanupReport, old_executions, remove

        report = CleanupReport(cutoff=older_than, dry_run=dry_run)
        with self._session(create=False) as con:
            report.executions = old_executions(con, older_than)
            files = [
                (journal_paths(self.journals_dir, self.journal_path(i).stem), self.artifacts_dir(i))
                for i in report.executions
            ]
            remove(con, report.executions, files, report)
        if not dry_run:
            from .recent import forget

            forget(self.path, report.executions)
        return report

    # -- the cache -----------------------------------------------------------------------------

    @property
    def cache_clears_path(self) -> Path:
        return self.path / "cache-clears.jsonl"

    def cache_entries(
        self, workflow: str | None = None, task_ids: list[str] | None = None
    ) -> list[CacheEntry]:
        """Cache entries not cleared (see ``store/cache.py``): the newest per workflow, task
        and key, newest first; ``workflow`` and ``task_ids`` narrow them."""
        from .cache import cache_entries, read_clears

        clears = read_clears(self.cache_clears_path)
        return self._read(cache_entries, clears, workflow, task_ids)

    def clear_cache(self, workflow: str | None = None, task_id: str | None = None) -> int:
        """Forget the cache entries of ``workflow`` and ``task_id`` (None: every one) recorded
        until now, for good; how many there were."""
        import time

        from .cache import Clear, append_clear, cache_entries, read_clears

        if not self.exists():
            return 0
        with self._session() as con:
            clears = read_clears(self.cache_clears_path)
            clear = Clear(time.time(), workflow, task_id)
            entries = cache_entries(con, clears, workflow)
            append_clear(self.cache_clears_path, clear)
        return sum(1 for e in entries if clear.covers(e))

    def query(self, sql: str, params: list[Any] | None = None) -> tuple[list[str], list[tuple]]:
        """Refresh, then run ``sql`` on a read-only connection; return column names and rows.

        For a user's own SQL (``jupyter_workflows.sql`` goes through ``query_arrow``): the
        package's reads are the named methods, so the SQL they send lives in the store.
        """

        def rows(con: duckdb.DuckDBPyConnection) -> tuple[list[str], list[tuple]]:
            if con.description is None:
                return [], []
            return [d[0] for d in con.description], con.fetchall()

        return self._read_only(sql, params, rows)

    def query_arrow(self, sql: str, params: list[Any] | None = None) -> pyarrow.Table:
        """``query`` with the result as a pyarrow Table in DuckDB's own column types (kept for
        empty results too); about 30 times faster than ``query`` on large results."""

        def table(con: duckdb.DuckDBPyConnection) -> pyarrow.Table:
            import pyarrow as pa

            if con.description is None:
                return pa.table({})
            # duckdb 1.x calls it fetch_arrow_table, 2.x to_arrow_table
            fetch = getattr(con, "to_arrow_table", None) or con.fetch_arrow_table  # type: ignore[attr-defined]
            with warnings.catch_warnings():  # 2.x warns that a DB-API result costs a copy
                warnings.simplefilter("ignore", UserWarning)
                return fetch()

        return self._read_only(sql, params, table)

    def _read_only(
        self, sql: str, params: list[Any] | None, fetch: Callable[[duckdb.DuckDBPyConnection], T]
    ) -> T:
        if not self.exists():
            with _empty_index() as path:
                return _query_read_only(path, sql, params, fetch)
        with self._locked():
            try:
                return self._refreshed_query(sql, params, fetch)
            except IndexSetAside:  # found damaged: set aside, so this refresh rebuilds it
                return self._refreshed_query(sql, params, fetch)

    def _refreshed_query(
        self, sql: str, params: list[Any] | None, fetch: Callable[[duckdb.DuckDBPyConnection], T]
    ) -> T:
        """Refresh, then run ``sql`` read-only; caller holds the lock."""
        with self._connected() as con:
            self._refresh(con)
        return _query_read_only(self.index_path, sql, params, fetch)

    def _read(
        self,
        query: Callable[Concatenate[duckdb.DuckDBPyConnection, P], T],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        try:
            with self._session(create=False) as con:
                return query(con, *args, **kwargs)
        except IndexSetAside:
            # Found damaged while reading: it was set aside, so this read rebuilds it.
            with self._session(create=False) as con:
                return query(con, *args, **kwargs)

    # -- plumbing ----------------------------------------------------------------------------

    @contextmanager
    def _locked(self) -> Iterator[None]:
        # Readers need the folder writable too: bringing the index up to date writes it.
        self.check_writable()
        with IndexLock(self.lock_path, self.lock_timeout):
            yield

    @contextmanager
    def _connected(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A read-write connection with the schema migrated; caller holds the lock.

        An index that cannot be opened is set aside and a new one made (the refresh that
        follows fills it from every journal); one found damaged while in use is set aside
        and ``IndexSetAside`` raised, so the next session rebuilds it.
        """
        import duckdb

        con = open_index(self.index_path)
        try:
            yield con
        except duckdb.Error as exc:
            con.close()
            if not looks_damaged(exc):
                raise StoreError(f"execution index {self.index_path}: {exc}") from exc
            set_aside(self.index_path, exc)
            raise IndexSetAside(
                f"execution index {self.index_path} is damaged ({exc}); it was set aside and "
                "is rebuilt from the journals on the next read"
            ) from exc
        finally:
            con.close()

    @contextmanager
    def _session(
        self, refresh: bool = True, *, create: bool = True
    ) -> Iterator[duckdb.DuckDBPyConnection]:
        """Lock, open, optionally refresh; the unit every operation runs in.

        ``create=False`` (reads): a store where nothing was recorded yet is not created; the
        session is on an empty in-memory index instead.
        """
        if not create and not self.exists():
            import duckdb

            con = duckdb.connect(":memory:")
            try:
                migrate(con)
                yield con
            finally:
                con.close()
            return
        with self._locked(), self._connected() as con:
            if refresh:
                self._refresh(con)
            yield con

    def _refresh(self, con: duckdb.DuckDBPyConnection) -> None:
        try:
            self._bring_up_to_date(con)
        except OSError as exc:  # journals/ went bad under us, or a crash ending cannot be added
            raise StoreError(f"cannot bring the execution index up to date: {exc}") from exc

    def _bring_up_to_date(self, con: duckdb.DuckDBPyConnection) -> None:
        changes = find_changed(con, self.journals_dir)
        if ingest_tolerant(con, changes.changed):
            changes.read_done = False  # keep listing done/ until every journal there is in
        archive(con, self.journals_dir, changes)
        orphans = orphaned_runs(con)
        if orphans:
            for execution_id in orphans:
                journal = self.journal_path(execution_id)
                if mark_crashed(journal):
                    _note_crash(self.path, journal)
            # Re-ingest every orphan: crashed ones now end, and one that ended on its own just
            # before its owner exited has its RunEnded picked up here.
            files = [journal_file(self.journals_dir, eid) for eid in orphans]
            ingest_tolerant(con, [f for f in files if f is not None])
        for stale in stale_requests(con, self.requests_dir):
            remove_request(stale)


def _note_crash(store_path: Path, journal: Path) -> None:
    """Add a run just ended as crashed to its workflow's recent runs (what alert rules read)."""
    from .journal import read_events
    from .recent import record_journal_end

    try:
        record_journal_end(store_path, read_events(journal))
    except Exception as exc:  # derived data: the journal keeps the record
        import logging

        logging.getLogger(__name__).warning(
            "cannot note the crash of %s in recent runs: %s", journal.stem, exc
        )


def _query_read_only(
    index: Path, sql: str, params: list[Any] | None, fetch: Callable[[duckdb.DuckDBPyConnection], T]
) -> T:
    import duckdb

    try:
        con = duckdb.connect(str(index), read_only=True)
    except duckdb.Error as exc:
        raise StoreError(f"cannot open {index}: {exc}") from exc
    try:
        con.execute(sql, params or [])
        return fetch(con)
    except duckdb.Error as exc:
        if looks_damaged(exc):
            con.close()
            set_aside(index, exc)
            raise IndexSetAside(f"execution index {index} is damaged: {exc}") from exc
        raise StoreError(f"query failed: {exc}") from exc
    finally:
        con.close()


@contextmanager
def _empty_index() -> Iterator[Path]:
    """An empty index in a temporary folder (not the project's), for read-only queries of a
    store where nothing was recorded yet: the same tables, the same read-only refusals."""
    import tempfile

    import duckdb

    with tempfile.TemporaryDirectory(prefix="jupyter-workflows-empty-") as folder:
        path = Path(folder) / "index.duckdb"
        con = duckdb.connect(str(path))
        try:
            migrate(con)
        finally:
            con.close()
        yield path
