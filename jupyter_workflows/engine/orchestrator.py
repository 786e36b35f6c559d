"""``WorkflowOrchestrator``: load a workflow, run it, record it. The API every surface uses."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..execution.records import Execution
from ..project import default_store_path, file_argument
from ..project import project_root as find_project_root
from ..store.requests import read_request, remove_request
from .executors import Executor
from .reuse import Reuse, plan_resume
from .run import WorkflowRun, task_hashes
from .sync import run_sync

if TYPE_CHECKING:
    from ..definition.model import Workflow
    from ..store import ExecutionStore
    from ..store.models import CacheEntry


class WorkflowOrchestrator:
    """Runs workflows and records them in the execution store.

    ``project_root`` is where relative paths in workflows resolve (default: the project the
    working directory is in, see ``jupyter_workflows.project``). ``store`` is an
    ``ExecutionStore``; by default the one the project configures. ``record=False`` runs
    without a history. Workflow files given by path resolve against the working directory.
    """

    def __init__(
        self,
        project_root: str | Path | None = None,
        *,
        store: ExecutionStore | None = None,
        record: bool = True,
        sinks: Iterable[Any] = (),
        kill_grace: float = 5.0,
        executor: str | Executor | None = None,
        cluster: str | Any = None,
    ):
        # Where attempts run: "local" or "dask" (or an executor instance); ``cluster`` (a
        # scheduler address or a distributed.Client) implies dask. Unset: the project config's
        # ``executor`` / ``cluster``, else this machine.
        self.executor = executor
        self.cluster = cluster
        self.project_root = (
            Path(project_root).expanduser().resolve() if project_root else find_project_root()
        )
        self._store = store
        self.record = record
        self.sinks = list(sinks)
        self.kill_grace = kill_grace

    @property
    def store(self) -> ExecutionStore:
        if self._store is None:
            from ..store import ExecutionStore

            self._store = ExecutionStore(default_store_path(self.project_root))
        return self._store

    def load(
        self, workflow: str | Path | Workflow | dict[str, Any], *, plain: bool = False
    ) -> tuple[Workflow, str | None]:
        """The model to run and the file it came from. Files and dicts are validated in full;
        a ``Workflow`` built in Python has its graph checked (no cycle, no unknown or
        unreachable dependency, unique ids), so a run never waits for a task that cannot end.
        Raises ``ValidationError`` with located problems, before anything is recorded.

        ``plain``: a file's workflow may come as plain objects with the same fields and
        methods (``definition/plain.py``), for a process that only runs it (``workflow run``):
        then pydantic is never imported."""
        from ..definition.behaviour import WorkflowBehaviour
        from ..definition.loader import check_graph, load_for_run, load_workflow

        if isinstance(workflow, WorkflowBehaviour):  # a model, or its plain form
            check_graph(workflow)
            return workflow, None

        if isinstance(workflow, dict):
            return load_workflow(workflow, project_root=self.project_root), None
        path = file_argument(workflow, self.project_root)
        return (load_for_run(path) if plain else load_workflow(path)), str(path)

    def prepare(
        self,
        workflow: str | Path | Workflow | dict[str, Any],
        *,
        env: Mapping[str, str] | None = None,
        max_parallel: int | None = None,
        execution_id: str | None = None,
        trigger: str = "manual",
        sinks: Iterable[Any] = (),
        file: str | None = None,
        resume: str | None = None,
        from_task: str | None = None,
        only: str | None = None,
        no_cache: bool = False,
        refresh: Iterable[str] = (),
        params: Mapping[str, Any] | None = None,
    ) -> WorkflowRun:
        """Load and set up a run without starting it (its id is known before it starts).

        ``file`` names the definition a pre-loaded Workflow came from (for the record).

        ``resume``: an execution id (or unambiguous prefix) of this workflow: the tasks that
        succeeded there, unchanged since, are reused rather than run; ``from_task`` re-runs
        that task and everything downstream too, ``only`` runs just that task (see
        ``engine/reuse.py``). ``no_cache`` ignores every task's ``cache:``, ``refresh`` the
        named tasks'. ``params``: the run's parameters, typed (``${params.NAME}``; also
        injected into every notebook task, whose own ``parameters`` win). Raises
        ResumeRefused (or ExecutionNotFound...) before anything is recorded when the run
        cannot be set up as asked.
        """
        from ..secrets import resolve_secrets

        model, loaded_from = self.load(workflow)
        file = file or loaded_from
        # Before anything is recorded or run: a secret that cannot be found stops it here.
        secrets = resolve_secrets(
            model, self.project_root, {**os.environ, **(env or {})}, source=file
        )
        refresh = list(refresh)
        reuse = self.plan_reuse(
            model, env, resume, from_task, only, no_cache, refresh, params=params
        )
        params = reuse.params  # a resumed run's own, with those given now on top
        all_sinks: list[Any] = [*self.sinks, *sinks]
        execution_id = execution_id or str(uuid.uuid4())
        journal = self.store.open_journal(execution_id) if self.record else None
        if journal is not None:
            from ..store.recent import RecentRunsRecorder

            # Right after the journal, before any consumer: the alert rules read the run's
            # workflow's recent runs, this one included, when it ends.
            all_sinks[:0] = [journal, RecentRunsRecorder(self.store.path)]
        run = WorkflowRun(
            model,
            execution_id=execution_id,
            project_root=self.project_root,
            env=env,
            max_parallel=max_parallel,
            sinks=all_sinks,
            kill_grace=self.kill_grace,
            file=file,
            trigger=trigger,
            runner_identity=_identity(),
            artifacts_dir=self.store.artifacts_dir(execution_id) if self.record else None,
            **self._placement(),
            journal_path=getattr(journal, "path", None),
            reuse=reuse,
            secrets=secrets,
            params=params,
        )
        run.journal = journal
        run.resumed_from = reuse.resume.execution_id if reuse.resume else None
        if self.record:
            run.source_artifacts = self.store.artifacts_dir
        return run

    def plan_reuse(
        self,
        model: Workflow,
        env: Mapping[str, str] | None,
        resume: str | None,
        from_task: str | None,
        only: str | None,
        no_cache: bool,
        refresh: list[str],
        *,
        params: Mapping[str, Any] | None = None,
    ) -> Reuse:
        """What a run of ``model`` may reuse: the plan of the run it resumes, and its cache
        entries (read from the store now). Raises as ``prepare`` does for a resume that cannot
        be done, without recording anything: callers can check a resume before queueing it."""
        from ..errors import WorkflowError
        from ..execution.events import now

        if (from_task is not None or only is not None) and resume is None:
            raise WorkflowError(
                "--from and --only choose what a resumed run re-runs: give --resume"
            )
        cached = [t.id for t in model.tasks if t.id and t.cache_config is not None]
        for task_id in refresh:
            if task_id not in cached:
                raise WorkflowError(
                    f"--refresh {task_id}: workflow '{model.name}' has no task '{task_id}' with "
                    f"cache: (cached tasks: {', '.join(cached) or 'none'})"
                )
        old = None
        if resume is not None:
            if not self.record:
                raise WorkflowError("a run without a record (record=False) cannot resume one")
            old = self.store.get_execution(resume)
            _refuse_masked_params(old, params or {})
            # A resume runs with the parameters of the run it resumes; a parameter given now
            # replaces that one (and the tasks it reaches run again: their hashes change).
            params = {**(old.params or {}), **(params or {})}
        hashes = task_hashes(model, self.project_root, env, params)
        plan = None
        if old is not None:
            plan = plan_resume(model, hashes, old, from_task=from_task, only=only)
        entries: dict[str, list[CacheEntry]] = {}
        if cached and self.record and not no_cache and self.store.exists():
            for entry in self.store.cache_entries(model.name, cached):
                entries.setdefault(entry.task_id, []).append(entry)
        return Reuse(
            hashes,
            project_root=self.project_root,
            resume=plan,
            cache=entries,
            no_cache=no_cache,
            refresh=refresh,
            clock=now,
            params=params,
        )

    async def run_prepared(self, run: WorkflowRun) -> Execution:
        """Run a prepared run; records it even when cancelled (then re-raises).

        A recorded run also stops when a cancel request for it appears in the store
        (``ExecutionStore.cancel``, from any process): it is recorded ``cancelled`` and
        returned, not raised."""
        request = self._cancel_request_path(run)
        also = [run.custody.heartbeat]
        if request is not None:
            also.append(CancelWatch(request, run).check)
        heartbeat = _Heartbeat(getattr(run.journal, "path", None), *also)
        try:
            return await run.run()
        finally:
            heartbeat.stop()
            if self.record:
                self._close_journal(run)
            if request is not None:
                # After the journal is closed: a canceller waiting for the request to go
                # finds the run's end in the store.
                remove_request(request)

    def cancel(self, execution_id: str, *, by: str = "api", wait: float = 5.0) -> Execution:
        """Cancel a running execution of this orchestrator's store, whichever process runs
        it; see ``ExecutionStore.cancel`` (what it returns and raises)."""
        return self.store.cancel(execution_id, by=by, wait=wait)

    def _cancel_request_path(self, run: WorkflowRun) -> Path | None:
        """Where a request to cancel ``run`` would appear; None for a run that is not
        recorded (nobody can name it) or a store without requests."""
        if not self.record or run.journal is None:
            return None
        where = getattr(self.store, "cancel_request_path", None)
        return where(run.execution.id) if where is not None else None

    async def execute_async(
        self,
        workflow: str | Path | Workflow | dict[str, Any],
        *,
        raise_on_failure: bool = True,
        **options: Any,
    ) -> Execution:
        """``execute`` for a caller on an event loop (cancelling it cancels the run)."""
        execution = await self.run_prepared(self.prepare(workflow, **options))
        return execution.raise_for_status() if raise_on_failure else execution

    def execute(
        self,
        workflow: str | Path | Workflow | dict[str, Any],
        *,
        raise_on_failure: bool = True,
        **options: Any,
    ) -> Execution:
        """Run to completion and return the Execution, or raise ``WorkflowFailed`` (carrying
        it, its message naming each failed task and its error) when the run did not succeed,
        so a notebook's "Run All" and a headless ``papermill`` stop there.
        ``raise_on_failure=False`` returns the Execution however the run ended (to explore
        a failure). Ctrl-C (or a kernel interrupt) cancels the run: a cancelled run too is
        raised as WorkflowFailed, or returned with ``raise_on_failure=False``.

        A store that cannot be used raises StoreUnavailable before any task starts; a journal
        write that fails mid-run (disk full) stops every task and raises StoreWriteFailed
        (as does any event sink that raises: its exception), the run recorded as far as the
        journal would take it."""
        return self.execute_prepared(
            self.prepare(workflow, **options), raise_on_failure=raise_on_failure
        )

    def execute_prepared(self, run: WorkflowRun, *, raise_on_failure: bool = True) -> Execution:
        """``execute`` for a run made by ``prepare``."""
        try:
            execution = run_sync(lambda: self.run_prepared(run))
        except (asyncio.CancelledError, KeyboardInterrupt):
            execution = run.execution
        return execution.raise_for_status() if raise_on_failure else execution

    def _placement(self) -> dict[str, Any]:
        if self.executor is not None or self.cluster is not None:
            return {"executor": self.executor, "cluster": self.cluster}
        from ..project import executor_settings

        executor, cluster = executor_settings(self.project_root)
        return {"executor": executor, "cluster": cluster}

    def _close_journal(self, run: WorkflowRun) -> None:
        # The journal, fsync'd on close, is the record. The DuckDB index is derived from it by
        # whoever reads next (every read brings it up to date in one batched statement), so a
        # runner neither imports duckdb nor waits for the index lock.
        if run.journal is not None:
            run.journal.close()


# How often a runner touches its journal while it runs. Should it die, its journal's last write
# time says when to within this much: a reader records that as the (estimated) end.
HEARTBEAT_SECONDS = 0.5


class _Heartbeat:
    """Every HEARTBEAT_SECONDS on the running loop until stopped: touches the journal (if the
    run is recorded) and calls each of ``also`` (the run's custody replaces a guardian killed
    since; a ``CancelWatch`` looks for a cancel request)."""

    def __init__(self, path: Path | None, *also: Callable[[], None]):
        self.path = path
        self.also = also
        self.handle: asyncio.TimerHandle | None = None
        self._next()

    def _next(self) -> None:
        self.handle = asyncio.get_running_loop().call_later(HEARTBEAT_SECONDS, self._beat)

    def _beat(self) -> None:
        if self.path is not None:
            try:
                os.utime(self.path)
            except OSError:
                pass  # a missing journal is the store's to report, not the heartbeat's
        for call in self.also:
            call()
        self._next()

    def stop(self) -> None:
        if self.handle is not None:
            self.handle.cancel()
            self.handle = None


class CancelWatch:
    """Looks for a cancel request of one run (one ``stat`` per call) and, once one appears,
    asks the run to stop, saying who asked."""

    def __init__(self, path: Path, run: WorkflowRun):
        self.path = path
        self.run = run
        self.seen = False

    def check(self) -> None:
        if self.seen or not os.path.exists(self.path):
            return
        request = read_request(self.path)
        if request is None:  # removed between the stat and the read
            return
        self.seen = True
        self.run.request_cancel(f"cancelled on request from {request.describe()}", request.by)


def _identity() -> tuple[int, str, str | None]:
    """Who runs this execution, so a reader can tell a crashed runner from a live one."""
    from ..execution.owner import current_owner

    return current_owner()


def _refuse_masked_params(old: Execution, given: Mapping[str, Any]) -> None:
    """A parameter of ``old`` recorded masked (it held a secret's value) cannot be run with
    again: unless it is given anew, the resume is refused, saying which."""
    from ..errors import ResumeRefused
    from ..execution.masking import holds_mask

    masked = [name for name, value in (old.params or {}).items()
              if name not in given and holds_mask(value)]  # fmt: skip
    if masked:
        names = ", ".join(f"'{name}'" for name in masked)
        what, were = ("parameter", "was") if len(masked) == 1 else ("parameters", "were")
        raise ResumeRefused(
            old.id,
            f"{what} {names} {were} recorded masked (a secret's value is in it, and the record "
            f"holds *** instead); give {'it' if len(masked) == 1 else 'them'} again: "
            + " ".join(f"-p {name} VALUE" for name in masked),
        )
