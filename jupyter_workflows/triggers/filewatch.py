"""File-change triggers: run a workflow when files matching its globs are added, changed or removed.

``FileWatchJob.from_workflow`` makes a job of a workflow with a ``file_change`` trigger;
``FileWatcher(queue, jobs, root=...).run(stop)`` watches the project (watchfiles) until ``stop``
is set and submits each run to the ``RunQueue`` with trigger "file_change" and the environment
``CHANGED_FILE`` (absolute path), ``CHANGED_FILE_RELATIVE`` (from the project root, "/"-separated),
``FILE_EVENT`` (add, change, unlink), ``FILE_NAME``, ``FILE_DIR`` (absolute) and ``FILE_EXT``
(".ts"; "" for none).

What a user can rely on:
- Globs are relative to the project root (syntax in ``globs``): ``src/**/*.ts`` matches
  ``src/a.ts`` and ``src/x/y/a.ts``; ``package.json`` only the root's own. An ``ignore``
  pattern without "/" matches a name at any depth (``*.log``, ``dist``).
- Always ignored: the store directory, ``.git``, ``.venv``, ``node_modules``, ``__pycache__``,
  ``.ipynb_checkpoints``, tool caches, and editor swap files.
- ``add`` is a file the watcher did not know (created or moved in), ``change`` a known file that
  still exists (also when an editor replaces it by renaming), ``unlink`` a known file now gone
  (also when its directory was removed or moved away). A file created and removed within one
  burst fires nothing (an editor's temporary file).
- Debounce is per job: a burst ends when the job has seen no event for ``debounce`` seconds;
  then every changed file gets its own run (a burst touching 3 files gives 3 runs), because the
  variables describe one file. A file fires only once its size and mtime have not changed for
  ``settle`` seconds, so a file still being written fires once, complete.
- While a run of a job for a file is still queued or running, a new change of that file queues
  at most one follow-up run, started when the first ends; more changes fold into it.
- When the run queue is full the change is logged and dropped; the watcher keeps going.
- Only the directories the patterns can reach are watched (``src`` for ``src/**/*.ts``; the root
  alone, not its subtree, for ``package.json``), so a large ``node_modules`` costs nothing. A
  watched directory that is removed is watched again when it comes back.
"""

from __future__ import annotations

import asyncio
import os
import re
import stat
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..definition.model import FileChangeTrigger, Workflow
from ..errors import WorkflowError
from .globs import PathMatcher, WatchPlan, watch_plan

IGNORED_DIRS = frozenset(
    {".git", ".venv", "node_modules", "__pycache__", ".ipynb_checkpoints", ".hg", ".svn",
     ".tox", ".mypy_cache", ".pytest_cache", ".ruff_cache"}
)  # fmt: skip
_EDITOR_TEMP = re.compile(r"\.sw.$|~$|^\.#|^\.DS_Store$|\.___jb_...___$")


def change_env(rel: str, event: str, root: Path) -> dict[str, str]:
    """The variables a run started by a change of ``rel`` (relative to ``root``) gets.

    As in the original system, ``CHANGED_FILE`` and ``FILE_DIR`` are absolute (a task may run
    in another directory); ``CHANGED_FILE_RELATIVE`` is the path from the project root.
    """
    name = rel.rsplit("/", 1)[-1]
    directory = root / rel.rsplit("/", 1)[0] if "/" in rel else root
    dot = name.rfind(".")
    return {
        "CHANGED_FILE": str(root / rel),
        "CHANGED_FILE_RELATIVE": rel,
        "FILE_EVENT": event,
        "FILE_NAME": name,
        "FILE_DIR": str(directory),
        "FILE_EXT": name[dot:] if dot > 0 else "",
    }


# ---------------------------------------------------------------- jobs


@dataclass
class FileWatchJob:
    """One workflow to run when files matching ``patterns`` (and not ``ignore``) change.

    ``debounce`` is in seconds. Raises ``DefinitionError`` for a pattern that is absolute or
    climbs out of the project root.
    """

    file: Path
    workflow: Workflow
    patterns: list[str]
    ignore: list[str] = field(default_factory=list)
    debounce: float = 0.3
    matcher: PathMatcher = field(init=False, repr=False)

    def __post_init__(self) -> None:
        where = f"{self.file} (workflow '{self.workflow.name}'), trigger.config"
        self.matcher = PathMatcher(self.patterns, self.ignore, where=where)

    @classmethod
    def from_workflow(cls, file: str | Path, workflow: Workflow) -> FileWatchJob | None:
        """The job of a workflow with a ``file_change`` trigger; None for any other trigger."""
        trigger = workflow.trigger
        if not isinstance(trigger, FileChangeTrigger):
            return None
        config = trigger.config
        return cls(Path(file), workflow, list(config.files), list(config.ignore), config.debounce)

    @property
    def name(self) -> str:
        return self.workflow.name

    def matches(self, rel: str) -> bool:
        """Whether a change of ``rel`` (relative to the root, "/"-separated) concerns this job."""
        return self.matcher.matches(rel)


# ---------------------------------------------------------------- the watcher


def _file_stat(path: Path) -> tuple[int, int] | None:
    """(size, mtime_ns) of a regular file; None when it is missing or not a file."""
    try:
        info = path.stat()
    except OSError:
        return None
    return (info.st_size, info.st_mtime_ns) if stat.S_ISREG(info.st_mode) else None


@dataclass
class _Pending:
    stat: tuple[int, int] | None
    stable_since: float


@dataclass
class _JobState:
    job: FileWatchJob
    known: set[str] = field(default_factory=set)  # files of this job that exist, as last seen
    known_dirs: set[str] = field(default_factory=set)  # dirs that held known files (may be stale)
    pending: dict[str, _Pending] = field(default_factory=dict)
    last_event: float = 0.0
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    inflight: dict[str, Any] = field(default_factory=dict)  # rel -> QueuedRun
    followups: dict[str, str] = field(default_factory=dict)  # rel -> event

    def remember(self, rel: str) -> None:
        self.known.add(rel)
        parts = rel.split("/")[:-1]
        self.known_dirs.update("/".join(parts[: i + 1]) for i in range(len(parts)))


class FileWatcher:
    """Watches the project for the jobs' files and submits their runs to ``queue``.

    ``settle``: seconds a file's size and mtime must stay unchanged before it fires. ``ready``
    is set once the watches are in place and the files present at start are known (changes
    from then on are seen). ``run`` returns when ``stop`` is set; runs already submitted are the
    queue's to finish or cancel.
    """

    def __init__(
        self,
        queue: Any,
        jobs: Iterable[FileWatchJob],
        *,
        root: Path,
        settle: float = 0.2,
        log: Callable[[str], None] = print,
        step_ms: int = 50,
    ):
        self.queue = queue
        self.root = Path(root).resolve()
        self.settle = settle
        self.log = log
        self.step_ms = step_ms
        self.ready = asyncio.Event()
        self._states = [_JobState(job) for job in jobs]
        self._globs = [g for state in self._states for g in state.job.matcher.globs]
        self._store = self._store_dir()
        self._plan = WatchPlan([], [], set())
        self._restart = asyncio.Event()
        self._stopping = False

    def _store_dir(self) -> str | None:
        from ..store import default_store_path

        try:
            return default_store_path(self.root).resolve().relative_to(self.root).as_posix()
        except ValueError:  # the store lives outside the project: nothing to ignore
            return None

    # -- what counts

    def relative(self, path: Path) -> str | None:
        """``path`` relative to the root, or None when it is outside it or always ignored."""
        try:
            rel = path.relative_to(self.root).as_posix()
        except ValueError:
            return None
        if rel == "." or self._ignored(rel):
            return None
        return rel

    def _ignored(self, rel: str) -> bool:
        parts = rel.split("/")
        if IGNORED_DIRS.intersection(parts) or _EDITOR_TEMP.search(parts[-1]):
            return True
        store = self._store
        return store is not None and (rel == store or rel.startswith(store + "/"))

    def _watch_filter(self, _change: Any, raw: str) -> bool:
        return self.relative(Path(raw)) is not None

    def scan(self, plan: WatchPlan) -> set[str]:
        """Every file (relative) under the plan's directories that is not always ignored."""
        found: set[str] = set()
        for top, deep in [*((d, True) for d in plan.deep), *((d, False) for d in plan.flat)]:
            for dirpath, dirnames, filenames in os.walk(top):
                here = Path(dirpath)
                dirnames[:] = [d for d in dirnames if deep and self.relative(here / d)]
                found.update(r for f in filenames if (r := self.relative(here / f)) is not None)
        return found

    # -- the loop

    async def run(self, stop: asyncio.Event) -> None:
        """Watch and fire until ``stop`` is set."""
        if not self._states:
            self.ready.set()
            await stop.wait()
            return
        loops = [asyncio.create_task(self._job_loop(state)) for state in self._states]
        old: tuple[asyncio.Event, list[asyncio.Task[None]]] | None = None
        try:
            while True:
                current = await self._start_watching(first=old is None)
                if old is not None:  # the new watches overlap the old ones: no gap
                    old[0].set()
                    await asyncio.gather(*old[1], return_exceptions=True)
                old = current
                self.ready.set()
                await _first_of(stop, self._restart)
                if stop.is_set():
                    break
                self.log(f"file watch: watched directories changed; watching {self._describe()}")
        finally:
            self._stopping = True
            if old is not None:
                old[0].set()
                await asyncio.gather(*old[1], return_exceptions=True)
            for task in loops:
                task.cancel()
            await asyncio.gather(*loops, return_exceptions=True)

    async def _start_watching(
        self, *, first: bool
    ) -> tuple[asyncio.Event, list[asyncio.Task[None]]]:
        self._restart.clear()
        plan = watch_plan(self.root, self._globs)
        done = asyncio.Event()
        groups = [(plan.deep, True), (plan.flat, False)]
        tasks = [asyncio.create_task(self._watch(d, deep, done)) for d, deep in groups if d]
        # One turn of the loop runs each watcher to its first await: by then watchfiles has
        # set up its watches, and every change from here on is queued for us.
        await asyncio.sleep(0)
        failed = [t.exception() for t in tasks if t.done() and t.exception() is not None]
        if failed:
            done.set()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise WorkflowError(f"cannot watch {self._describe(plan)}: {failed[0]}")
        for task in tasks:
            task.add_done_callback(self._watcher_ended)
        self._plan = plan
        found = await asyncio.to_thread(self.scan, plan)
        self._reconcile(found, first=first)
        if first:
            names = ", ".join(sorted({f"'{s.job.name}'" for s in self._states}))
            self.log(f"file watch: watching {self._describe()} for {names}")
        return done, tasks

    def _describe(self, plan: WatchPlan | None = None) -> str:
        plan = plan or self._plan
        shown = [f"{d}/**" for d in plan.deep] + [f"{d}/*" for d in plan.flat]
        return ", ".join(shown) or "nothing"

    def _watcher_ended(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            self.log(f"file watch: watching stopped: {task.exception()!r}")

    async def _watch(self, dirs: list[Path], deep: bool, done: asyncio.Event) -> None:
        from watchfiles import awatch

        batches = awatch(
            *dirs,
            recursive=deep,
            stop_event=done,
            watch_filter=self._watch_filter,
            debounce=max(self.step_ms * 4, 200),  # the longest it groups a stream of changes
            step=self.step_ms,  # quiet time that ends a group: the latency we add
        )
        async for batch in batches:
            self._on_changes(batch)

    def _reconcile(self, found: set[str], *, first: bool) -> None:
        """Know the files present at start; after a re-watch, catch up what the gap hid."""
        now = asyncio.get_running_loop().time()
        for state in self._states:
            mine = {rel for rel in found if state.job.matches(rel)}
            if first:
                for rel in mine:
                    state.remember(rel)
                continue
            for rel in (mine - state.known) | (state.known - mine):
                self._note(state, rel, now)

    def _on_changes(self, changes: set[tuple[Any, str]]) -> None:
        from watchfiles import Change

        now = asyncio.get_running_loop().time()
        for change, raw in changes:
            path = Path(raw)
            rel = self.relative(path)
            if rel is None:
                continue
            if (change is Change.added and path in self._plan.wanted - self._plan.dirs) or (
                change is Change.deleted and path in self._plan.dirs
            ):
                self._restart.set()
            if change is Change.deleted:
                self._note_deleted(rel, now)
            elif not path.is_dir():
                self._note_all(rel, now)
            elif change is Change.added:  # moved in: the files in it arrive without events
                for found in self.scan(WatchPlan([path], [], set())):
                    self._note_all(found, now)

    def _note_all(self, rel: str, now: float) -> None:
        for state in self._states:
            if state.job.matches(rel):
                self._note(state, rel, now)

    def _note_deleted(self, rel: str, now: float) -> None:
        for state in self._states:
            if state.job.matches(rel):
                self._note(state, rel, now)
            if rel in state.known_dirs:  # a directory went: so did the files we knew in it
                for gone in [k for k in state.known if k.startswith(rel + "/")]:
                    self._note(state, gone, now)

    def _note(self, state: _JobState, rel: str, now: float) -> None:
        state.pending[rel] = _Pending(_file_stat(self.root / rel), now)
        state.last_event = now
        state.wake.set()

    async def _job_loop(self, state: _JobState) -> None:
        loop = asyncio.get_running_loop()
        poll = min(0.05, self.settle) or 0.01
        while True:
            if not state.pending:
                state.wake.clear()
                await state.wake.wait()
                continue
            quiet_at = state.last_event + state.job.debounce
            if loop.time() < quiet_at:
                await asyncio.sleep(quiet_at - loop.time())
                continue
            await self.ready.wait()
            settled = self._settled(state, loop.time())
            if settled:
                self._fire(state, settled)
            if state.pending:
                await asyncio.sleep(poll)

    def _settled(self, state: _JobState, now: float) -> list[str]:
        """Pending files whose size and mtime held still for ``settle`` seconds (or are gone)."""
        ready = []
        for rel, pending in state.pending.items():
            current = _file_stat(self.root / rel)
            if current != pending.stat:
                pending.stat, pending.stable_since = current, now
            if current is None or now - pending.stable_since >= self.settle:
                ready.append(rel)
        return ready

    def _classify(self, state: _JobState, rel: str) -> str | None:
        del state.pending[rel]
        exists = _file_stat(self.root / rel) is not None
        if exists:
            event = "change" if rel in state.known else "add"
            state.remember(rel)
            return event
        if rel in state.known:
            state.known.discard(rel)
            return "unlink"
        return None  # created and gone within the burst

    def _fire(self, state: _JobState, rels: list[str]) -> None:
        dropped: list[str] = []
        for rel in sorted(rels):
            event = self._classify(state, rel)
            if event is not None and not self._launch(state, rel, event):
                dropped.append(f"{rel} ({event})")
        if dropped:
            more = f" (+{len(dropped) - 5} more)" if len(dropped) > 5 else ""
            self.log(
                f"file watch: run queue full, {len(dropped)} change(s) of workflow "
                f"'{state.job.name}' dropped: {', '.join(dropped[:5])}{more}"
            )

    def _launch(self, state: _JobState, rel: str, event: str) -> bool:
        """Submit a run for ``rel`` (or fold it into its follow-up); False if the queue is full."""
        from ..engine.queue import QueueFull

        inflight = state.inflight.get(rel)
        if inflight is not None and not inflight.done.done():
            if rel not in state.followups:
                self.log(f"file watch: {rel} ({event}): '{state.job.name}' still busy with it; "
                         "one follow-up run queued")  # fmt: skip
            state.followups[rel] = event
            return True
        job = state.job
        # From the file when there is one, like the cron scheduler: an edited definition is
        # used from its next run on (and recorded with its file).
        file = job.file if job.file.is_absolute() else self.root / job.file
        source = file if file.is_file() else job.workflow
        try:
            env = change_env(rel, event, self.root)
            queued = self.queue.submit(source, env=env, trigger="file_change")
        except QueueFull:
            return False
        except Exception as exc:  # a broken definition or a closed queue: say so, keep watching
            self.log(f"file watch: {rel} ({event}): cannot start '{state.job.name}': {exc}")
            return True
        state.inflight[rel] = queued
        queued.done.add_done_callback(lambda _: self._finished(state, rel, queued))
        self.log(f"file watch: {rel} ({event}) -> '{state.job.name}' run {queued.execution_id}")
        return True

    def _finished(self, state: _JobState, rel: str, queued: Any) -> None:
        if state.inflight.get(rel) is queued:
            del state.inflight[rel]
        event = state.followups.pop(rel, None)
        if event is not None and not self._stopping and not self._launch(state, rel, event):
            self.log(f"file watch: run queue full, follow-up for {rel} ({event}) dropped")


async def _first_of(*events: asyncio.Event) -> None:
    waiters = [asyncio.ensure_future(event.wait()) for event in events]
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
