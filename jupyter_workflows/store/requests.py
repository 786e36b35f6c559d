"""Cancel requests: how any process asks a run's owner to stop it, through the store.

A request is a small JSON file in the store's folder, ``requests/<execution_id>.cancel``::

    {"by": "cli", "at": "2024-05-01T06:00:00+00:00", "pid": 4242, "user": "alice", "host": "h"}

It is written atomically (a temporary file, then a rename: the owner never reads half of
one) and without the index lock, so a busy index never delays it. The owner looks for it on
each heartbeat (one ``stat`` every half second), stops the run as Ctrl-C would, records it
``cancelled`` with ``cancelled_by``, and removes the request when the run ends. A request left
behind for a run that has ended (it ended as the request was written, or its owner died) is
ignored, and removed by the next refresh of the index.
"""

from __future__ import annotations

import json
import os
import socket
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from ..errors import ExecutionNotRunning
from ..execution.states import State
from .atomic import replace_json

if TYPE_CHECKING:
    import duckdb

    from ..execution.records import Execution

REQUESTS = "requests"
CANCEL_SUFFIX = ".cancel"


@dataclass(frozen=True)
class CancelRequest:
    """Who asked a run to stop: ``by`` names the surface (cli, lab, api, widget...)."""

    by: str
    at: str | None = None
    pid: int | None = None
    user: str | None = None
    host: str | None = None

    def describe(self) -> str:
        """``cli (user alice, pid 4242 on host-1)``: for the run's error."""
        who = [f"user {self.user}"] if self.user else []
        if self.pid:
            who.append(f"pid {self.pid}" + (f" on {self.host}" if self.host else ""))
        return f"{self.by} ({', '.join(who)})" if who else self.by


def request_path(store_path: Path, execution_id: str) -> Path:
    """Where a cancel request for ``execution_id`` goes (the id is checked by the caller)."""
    return store_path / REQUESTS / f"{execution_id}{CANCEL_SUFFIX}"


def write_request(path: Path, by: str) -> CancelRequest:
    """Write a cancel request at ``path`` atomically, creating its folder; returns it."""
    request = CancelRequest(
        by=by,
        at=datetime.now(timezone.utc).isoformat(),
        pid=os.getpid(),
        user=_user(),
        host=socket.gethostname(),
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    replace_json(path, asdict(request))  # its temporary name is not *.cancel: never read
    return request


def read_request(path: Path) -> CancelRequest | None:
    """The request at ``path``; None when there is none. One that cannot be read as written
    (edited by hand, say) still asks the run to stop: it is read as ``by="unknown"``."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError:
        return CancelRequest(by="unknown")
    try:
        data = json.loads(text)
        by = data.get("by")
        pid = data.get("pid")
        return CancelRequest(
            by=str(by) if by else "unknown",
            at=_text(data.get("at")),
            pid=pid if isinstance(pid, int) else None,
            user=_text(data.get("user")),
            host=_text(data.get("host")),
        )
    except (ValueError, AttributeError):
        return CancelRequest(by="unknown")


def remove_request(path: Path) -> None:
    """Remove a request (the run ended, or it was never for a running run)."""
    try:
        path.unlink()
    except OSError:
        pass  # gone already, or the folder is not ours to write: a stale request is ignored


def pending_requests(folder: Path) -> list[str]:
    """Execution ids with a cancel request in ``folder``."""
    try:
        entries = os.scandir(folder)
    except (FileNotFoundError, NotADirectoryError):
        return []
    with entries:
        return [
            e.name[: -len(CANCEL_SUFFIX)]
            for e in entries
            if e.name.endswith(CANCEL_SUFFIX) and not e.name.startswith(".")
        ]


def stale_requests(con: duckdb.DuckDBPyConnection, folder: Path) -> list[Path]:
    """Requests in ``folder`` for runs the index has as ended: no owner will ever read them."""
    ids = pending_requests(folder)
    if not ids:
        return []
    rows = con.execute(
        "SELECT execution_id FROM journals WHERE complete AND execution_id IN "
        "(SELECT unnest(?::VARCHAR[]))",
        [ids],
    ).fetchall()
    return [folder / f"{eid}{CANCEL_SUFFIX}" for (eid,) in rows]


class Store(Protocol):
    """What a cancel needs of a store (``ExecutionStore`` has it)."""

    def get_execution(self, id_or_prefix: str) -> Execution: ...

    def cancel_request_path(self, execution_id: str) -> Path: ...


def cancel_execution(store: Store, id_or_prefix: str, *, by: str, wait: float = 5.0) -> Execution:
    """Ask the owner of a running execution to cancel it, and wait up to ``wait`` seconds
    for it to be recorded; returns the execution as recorded then (still ``running`` if its
    owner has not ended it in time, or ``cancelled``, with ``cancelled_by`` = ``by``).

    Raises ExecutionNotFound or AmbiguousExecutionId for an id that names no single run, and
    ExecutionNotRunning for one that has ended, or whose owner is found dead (it is recorded
    as crashed then, as any read of the store records it).
    """
    execution = store.get_execution(id_or_prefix)
    _refuse_ended(execution)
    path = store.cancel_request_path(execution.id)
    write_request(path, by)
    if wait <= 0:
        return execution
    deadline = time.monotonic() + wait
    next_look = time.monotonic() + 1.0
    while time.monotonic() < deadline:
        # The owner removes the request once the run's end is in its journal: a stat is all
        # it costs to wait for that. A look at the store each second catches an owner that
        # died meanwhile (the read records it crashed).
        if not path.exists() or time.monotonic() >= next_look:
            execution = store.get_execution(execution.id)
            if execution.status is not State.RUNNING:
                break
            next_look = time.monotonic() + 1.0
        time.sleep(0.05)
    else:
        execution = store.get_execution(execution.id)
    if execution.status is not State.RUNNING:
        remove_request(path)  # consumed by the owner, or left for a run that ended anyway
    return execution


def _refuse_ended(execution: Execution) -> None:
    if execution.status in (State.RUNNING, State.PENDING):
        return
    died = execution.status is State.CRASHED and execution.end_estimated
    raise ExecutionNotRunning(execution.id, str(execution.status), execution.error, owner_died=died)


def _user() -> str | None:
    import getpass  # with termios: only for a request being written

    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a container): the uid says it
        return str(os.getuid())


def _text(value: object) -> str | None:
    return None if value is None else str(value)
