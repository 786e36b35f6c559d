"""The alert outbox: alerts are written to disk before they are sent, and sent until done.

Layout, in the store's folder::

    alerts/outbox/<id>.json   one alert waiting for at least one channel (fsync'd)
    alerts/outbox/<id>.lock   flock'ed by whoever is sending it
    alerts.jsonl              one line per alert once every channel is done (sent or dropped)
    alerts.lock               flock'ed while an alert is put in the outbox or settled

An outbox item is ``{"key", "alert": Alert.to_dict(), "created_at", "channels": [{"channel",
"status": "pending"|"sent"|"failed", "attempts", "error", "next_at", "at"}]}``. ``enqueue``
writes it (skipping an alert whose key is already in the outbox or in ``alerts.jsonl``: each
alert is sent once, restarts included). ``deliver`` tries the pending channels of the items it
is given, then of every item due, one send at a time per item, until its deadline; a send
still going on then finishes in the background, or dies with the process and is tried again
later (a receiver may then see it twice: delivery is at least once). Each attempt is counted
and the next one scheduled *before* the send, so a killed process loses nothing and never
retries faster than the backoff.

A channel that fails waits ``DeliveryConfig.wait_after(attempts)`` (30 s, 1 min, 2 min, ...,
at most 1 h) before its next attempt, made by whichever process delivers next (the next
``workflow run`` or ``%workflow run`` on the store, ``workflow serve``, the lab server,
``workflow alerts deliver``); after ``DeliveryConfig.attempts`` failed attempts (10: about
three hours of trying) it is dropped and the alert settles with ``ok: false``.
Records in ``alerts.jsonl``: ``{key, rule, workflow, execution_id, severity, title, state,
reminder, status: "sent"|"failed", ok, channels: [{channel, ok, attempts, error}], at,
settled_at}``; errors of the manager itself have ``rule: "internal"``.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..store.atomic import replace_json
from ..store.lock import IndexLock
from .rules import DeliveryConfig, redact

if TYPE_CHECKING:
    from .alert import Alert, Channel

log = logging.getLogger(__name__)

RECORDS = "alerts.jsonl"
RECORDS_LOCK = "alerts.lock"
OUTBOX = Path("alerts") / "outbox"
WORKERS = 4
SEND_MARGIN = 0.1  # seconds

Resolve = Callable[[str], "Channel"]


def outbox_dir(store_path: str | Path) -> Path:
    return Path(store_path) / OUTBOX


def item_path(store_path: str | Path, key: str) -> Path:
    digest = hashlib.sha256(key.encode("utf-8", "replace")).hexdigest()[:24]
    return outbox_dir(store_path) / f"{digest}.json"


def enqueue(
    store_path: str | Path, alerts: Iterable[tuple[Alert, list[str]]], now: float | None = None
) -> list[Path]:
    """Put each (alert, channel names) in the outbox, durably, unless its key is already
    there or in the records; returns the items written."""
    now = time.time() if now is None else now
    folder = outbox_dir(store_path)
    written: list[Path] = []
    with records_lock(store_path):
        recorded = recorded_keys(store_path)
        for alert, names in alerts:
            key = alert.key()
            path = item_path(store_path, key)
            if key in recorded or path.exists():
                continue
            folder.mkdir(parents=True, exist_ok=True)
            # The console first: it cannot hang, and it is where a person watching looks.
            ordered = sorted(dict.fromkeys(names), key=lambda n: n != "console")
            item = {
                "key": key,
                "alert": alert.to_dict(),
                "created_at": now,
                "channels": [
                    {"channel": name, "status": "pending", "attempts": 0, "error": None,
                     "next_at": now, "at": None}
                    for name in ordered
                ],
            }  # fmt: skip
            path.with_suffix(".lock").touch()
            _save(path, item)
            written.append(path)
        if written:
            _fsync_dir(folder)
    return written


def deliver(
    store_path: str | Path,
    resolve: Resolve,
    *,
    policy: DeliveryConfig,
    deadline: float,
    first: Iterable[Path] = (),
    others: bool = True,
    force: bool = False,
    secrets: Iterable[str] = (),
) -> None:
    """Try the pending channels of ``first``, then (``others``) of every item in the outbox,
    until ``deadline`` seconds from now; returns then at the latest.

    Only channels due (their ``next_at`` passed) are tried, unless ``force``. ``resolve``
    makes a channel from its name (ChannelError when it cannot). Errors are redacted of
    ``secrets`` and of the channel's own.
    """
    deadline_at = time.monotonic() + deadline
    paths = list(dict.fromkeys(first))
    if others:
        folder = outbox_dir(store_path)
        with contextlib.suppress(FileNotFoundError):
            waiting = sorted(folder.glob("*.json"), key=_created)
            paths += [p for p in waiting if p not in paths]
    if not paths:
        return
    todo: queue.SimpleQueue[Path] = queue.SimpleQueue()
    for path in paths:
        todo.put(path)
    courier = _Courier(store_path, resolve, policy, deadline_at, force, list(secrets))
    workers = [
        threading.Thread(target=courier.work, args=(todo,), name="alert-delivery", daemon=True)
        for _ in range(min(WORKERS, len(paths)))
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(max(0.0, deadline_at - time.monotonic()))


class _Courier:
    """Sends outbox items taken from a queue until the deadline (one per worker thread)."""

    def __init__(
        self,
        store_path: str | Path,
        resolve: Resolve,
        policy: DeliveryConfig,
        deadline_at: float,
        force: bool,
        secrets: list[str],
    ):
        self.store_path = store_path
        self.resolve = resolve
        self.policy = policy
        self.deadline_at = deadline_at
        self.force = force
        self.secrets = secrets
        self._recorded: set[str] | None = None
        self._guard = threading.Lock()

    def recorded(self) -> set[str]:
        """Keys settled already, read once per delivery round."""
        with self._guard:
            if self._recorded is None:
                self._recorded = recorded_keys(self.store_path)
            return self._recorded

    def work(self, todo: queue.SimpleQueue[Path]) -> None:
        while time.monotonic() < self.deadline_at:
            try:
                path = todo.get_nowait()
            except queue.Empty:
                return
            try:
                self.item(path)
            except Exception as exc:  # one bad item must not stop the others
                log.warning("alert outbox item %s: %s", path.name, exc)

    def item(self, path: Path) -> None:
        with _claim(path) as item:
            if item is None:
                return  # being sent by someone else, or done
            if item["key"] in self.recorded():
                _remove(path)  # settled by a process that died before removing it
                return
            from .alert import Alert

            alert = Alert.from_dict(item["alert"])
            for channel in item["channels"]:
                if channel["status"] != "pending":
                    continue
                if time.monotonic() >= self.deadline_at:
                    break
                if not self.force and channel["next_at"] > time.time():
                    continue
                self.attempt(path, item, channel, alert)
            if all(c["status"] != "pending" for c in item["channels"]):
                settle(self.store_path, path, item)

    def attempt(
        self, path: Path, item: dict[str, Any], channel: dict[str, Any], alert: Alert
    ) -> None:
        from .channels import time_limit

        channel["attempts"] += 1
        channel["next_at"] = time.time() + self.policy.wait_after(channel["attempts"])
        channel["error"] = f"{channel['channel']}: no answer before the sending process ended"
        _save(path, item)  # counted before it is made: a kill mid-send still waits its turn
        error = sender = None
        try:
            sender = self.resolve(channel["channel"])
            # Network timeouts end a little before the deadline, so the outcome is recorded.
            with time_limit(self.deadline_at - SEND_MARGIN):
                sender.send(alert)
        except Exception as exc:
            error = self.describe(exc, channel["channel"], sender)
        channel["at"] = time.time()
        if error is None:
            channel.update(status="sent", error=None)
        else:
            channel["error"] = error
            if channel["attempts"] >= self.policy.attempts:
                channel["status"] = "failed"
            log.info("alert %s: %s attempt %d failed: %s", item["key"], channel["channel"],
                     channel["attempts"], error)  # fmt: skip
        _save(path, item)

    def describe(self, exc: Exception, name: str, sender: Any) -> str:
        from .alert import ChannelError

        text = str(exc) if isinstance(exc, ChannelError) else (
            f"{name}: unexpected {type(exc).__name__}: {exc}"
        )  # fmt: skip
        own = [s for s in getattr(sender, "secrets", ()) if s]
        return redact(text, sorted([*own, *self.secrets], key=len, reverse=True))


def settle(store_path: str | Path, path: Path, item: dict[str, Any]) -> dict[str, Any]:
    """Record a finished item in ``alerts.jsonl`` and take it out of the outbox."""
    record = settled_record(item)
    with records_lock(store_path):
        append_record(store_path, record)
    _remove(path)
    return record


def settled_record(item: dict[str, Any]) -> dict[str, Any]:
    channels = [
        {"channel": c["channel"], "ok": c["status"] == "sent", "attempts": c["attempts"],
         "error": c["error"]}
        for c in item["channels"]
    ]  # fmt: skip
    ok = all(c["ok"] for c in channels)
    return {
        **_summary(item),
        "status": "sent" if ok else "failed",
        "ok": ok,
        "channels": channels,
        "settled_at": time.time(),
    }


def pending_records(store_path: str | Path) -> list[dict[str, Any]]:
    """The alerts in the outbox, as records with ``status: "pending"`` (``ok`` None; each
    channel's ``ok`` None while it waits, with its attempts, last error and next try)."""
    records = []
    with contextlib.suppress(FileNotFoundError):
        for path in outbox_dir(store_path).glob("*.json"):
            item = _load(path)
            if item is None:
                continue
            channels = [
                {"channel": c["channel"],
                 "ok": {"sent": True, "failed": False}.get(c["status"]),
                 "attempts": c["attempts"], "error": c["error"],
                 "next_at": c["next_at"] if c["status"] == "pending" else None}
                for c in item["channels"]
            ]  # fmt: skip
            records.append({**_summary(item), "status": "pending", "ok": None,
                            "channels": channels})  # fmt: skip
    return records


def _summary(item: dict[str, Any]) -> dict[str, Any]:
    alert = item["alert"]
    return {
        "key": item["key"],
        **{name: alert.get(name) for name in ("rule", "workflow", "execution_id", "severity",
                                              "title", "state", "reminder")},
        "at": item.get("created_at"),
    }  # fmt: skip


# -- records ---------------------------------------------------------------------------------


def read_records(store_path: str | Path) -> list[dict[str, Any]]:
    """Every record of ``alerts.jsonl``, oldest first (a line cut off by a crash skipped)."""
    try:
        text = (Path(store_path) / RECORDS).read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    records = []
    for line in text.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            if "status" not in record:  # written before the outbox: sent or failed at once
                record["status"] = "sent" if record.get("ok") else "failed"
            records.append(record)
    return records


def recorded_keys(store_path: str | Path) -> set[str]:
    return {r["key"] for r in read_records(store_path) if isinstance(r.get("key"), str)}


def append_record(store_path: str | Path, record: dict[str, Any]) -> None:
    """Append one record, fsync'd (call under ``records_lock``)."""
    path = Path(store_path) / RECORDS
    path.parent.mkdir(parents=True, exist_ok=True)
    data = (json.dumps(record, default=str) + "\n").encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def records_lock(store_path: str | Path) -> IndexLock:
    Path(store_path).mkdir(parents=True, exist_ok=True)
    return IndexLock(Path(store_path) / RECORDS_LOCK)


# -- files -----------------------------------------------------------------------------------


@contextlib.contextmanager
def _claim(path: Path) -> Iterator[dict[str, Any] | None]:
    """The item at ``path``, locked for this sender; None if another holds it or it is gone."""
    lock = path.with_suffix(".lock")
    try:
        fd = os.open(lock, os.O_RDWR)
    except FileNotFoundError:
        yield None
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield None
            return
        try:
            # Still the item's lock, not one a settling sender removed after we opened it.
            current = os.stat(lock).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            current = False
        yield _load(path) if current else None
    finally:
        os.close(fd)


def _load(path: Path) -> dict[str, Any] | None:
    try:
        item = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError):
        return None
    return item if isinstance(item, dict) and "key" in item else None


def _save(path: Path, item: dict[str, Any]) -> None:
    replace_json(path, item, durable=True, default=str)  # the old item or the new, whole


def _remove(path: Path) -> None:
    path.unlink(missing_ok=True)
    path.with_suffix(".lock").unlink(missing_ok=True)


def _created(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
