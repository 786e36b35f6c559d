"""One execution of a workflow: ready-queue DAG scheduling over the task types.

A task starts as soon as every dependency has ended; ``max_parallel`` bounds how many attempts
run at once (waiting for a retry holds no slot). A failed task skips its dependents, and so on
down the graph; a false condition skips only the task itself. Every change is an event; the
``Execution`` record, the journal and the console are all fed from that one stream.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..definition.conditions import parse_condition
from ..definition.templates import Scope, TaskView
from ..errors import StoreError, WorkflowError
from ..execution.events import Event, RunEnded, RunStarted, TaskEnded, now
from ..execution.records import Execution
from ..execution.states import FAILURES, State
from ..secrets.resolve import Resolved, resolve_secrets
from ..tasks.custody import RunCustody
from .attempts import RunContext, TaskRunner
from .exclusive import SiblingGate
from .executors import Executor, make_executor
from .fingerprint import definition_hash
from .reuse import Decision, Reuse, copy_artifacts, moved

if TYPE_CHECKING:
    from ..definition.model import AnyTask, TaskBase, Workflow


class WorkflowRun:
    """Runs one workflow once. Create, then ``await run()``; the record is ``.execution``."""

    def __init__(
        self,
        workflow: Workflow,
        *,
        execution_id: str,
        project_root: Path,
        env: Mapping[str, str] | None = None,
        max_parallel: int | None = None,
        sinks: Iterable[object] = (),
        kill_grace: float = 5.0,
        file: str | None = None,
        trigger: str = "manual",
        runner_identity: tuple[int, str, str | None] = (0, "", None),
        artifacts_dir: Path | None = None,
        executor: str | Executor | None = None,
        cluster: Any = None,
        journal_path: Path | None = None,
        reuse: Reuse | None = None,
        secrets: Resolved | None = None,
        params: Mapping[str, Any] | None = None,
    ):
        self.workflow = workflow
        self.execution = Execution(id=execution_id, workflow=workflow.name)
        self.file = file
        self.trigger = trigger
        self.identity = runner_identity
        self.journal: Any = None  # set by the orchestrator when the run is recorded
        self._sinks = [self.execution.apply, *sinks]
        limit = max_parallel or workflow.defaults.max_parallel or os.cpu_count() or 2
        # Tasks named as another's on_success/on_failure run only as its callbacks.
        self.handlers = workflow.callback_ids()
        self.dag = [t for t in workflow.tasks if t.id not in self.handlers]
        # Every task is known from the start, so `${tasks.x.status} == 'pending'` is legal.
        self.views: dict[str, TaskView] = {t.id: TaskView() for t in workflow.tasks if t.id}
        template_env = template_environment(workflow, project_root, env)
        if secrets is None:  # SecretError before anything runs when one cannot be found
            secrets = resolve_secrets(workflow, project_root, {**os.environ, **(env or {})})
        # Every event is masked before any sink sees it (``emit``): the values of the secrets
        # and of the environment variables the workflow declares secret become ***.
        self.masker, short = secrets.masker()
        for name in short:
            print(
                f"jupyter-workflows: secret '{name}' is shorter than 4 characters: it is not "
                "masked in output, records or alerts",
                file=sys.stderr,
            )
        self.params = dict(params or {})  # ``${params.NAME}``, and every notebook task's
        masked = [] if self.masker is None else self.masker.changed_keys(self.params)
        for name in masked:
            print(
                f"jupyter-workflows: parameter '{name}' holds a secret's value: tasks get it "
                "as given, but it is recorded as ***, and a resume of this run needs it given "
                f"again (-p {name} VALUE)",
                file=sys.stderr,
            )
        self.scope = Scope(
            env=template_env,
            tasks=self.views,
            webhook=webhook_context(template_env),
            secrets=secrets.values,
            params=self.params,
        )
        # Which ready tasks are reused rather than run (``engine/reuse.py``): by default none
        # but cache hits of tasks with ``cache:``. The definition hashes it holds are recorded
        # in run_started: what a later resume compares.
        self.reuse = reuse or Reuse(
            task_hashes(workflow, project_root, env, self.params),
            project_root=project_root,
            clock=now,
        )
        self.hashes = self.reuse.hashes
        self.resumed_from: str | None = None
        # Where an earlier execution keeps its files (``store.artifacts_dir``): a reused task
        # gets its files from there. None when the run is not recorded.
        self.source_artifacts: Any = None
        self._workdir = Path(tempfile.mkdtemp(prefix="jupyter-workflows-"))
        self.artifacts_dir = artifacts_dir or self._workdir / "artifacts"
        # An executor made here from a name is this run's to close; an instance is the caller's.
        self._owns_executor = not executor or isinstance(executor, str)
        self.executor = make_executor(executor, cluster)
        self.kill_grace = kill_grace
        # The run's processes: tagged, recorded, ended with the run (and with its runner).
        self.custody = RunCustody(execution_id, emit=self.emit, journal=journal_path)
        self.runner = TaskRunner(
            RunContext(
                execution_id=execution_id,
                workflow_name=workflow.name,
                defaults=workflow.defaults,
                scope=self.scope,
                views=self.views,
                emit=self.emit,
                started_at=self._started_at,
                task=workflow.task,
                artifacts_dir=self.artifacts_dir,
                cache_key=lambda task_id: self.reuse.keys.get(task_id),
                masker=self.masker,
            ),
            executor=self.executor,
            semaphore=asyncio.Semaphore(limit),
            process_env=template_env,
            project_root=project_root,
            kill_grace=kill_grace,
            workdir=self._workdir,
            custody=self.custody,
        )
        self._blocking: set[str] = set()
        self._running: dict[str, asyncio.Task[None]] = {}
        self._remaining: dict[str, int] = {}
        self._dependents: dict[str, list[AnyTask]] = {}
        self._ended = 0
        self._stopping = False
        self._all_ended: asyncio.Future[None] | None = None
        self._fault: Exception | None = None  # the first sink that failed: the run stops
        # (reason, who asked) once a cancel was requested from elsewhere (``request_cancel``).
        self._cancel: tuple[str, str | None] | None = None
        self._gate: SiblingGate | None = None  # parallel: false tasks run alone

    # -- events -------------------------------------------------------------------------
    def add_sink(self, sink: Any) -> None:
        """Give every event from now on to ``sink`` too (before ``run``: all of them)."""
        self._sinks.append(sink)

    def emit(self, event: Event) -> None:
        """Hand ``event`` to every sink. A sink that raises (the journal on a full disk) does
        not stop the others, nor the code that emitted: it stops the run (``_sink_failed``).
        Secrets are masked first: no sink ever sees one."""
        if self.masker is not None:
            event = self.masker.event(event)
        for sink in self._sinks:
            try:
                sink(event)  # type: ignore[operator]
            except Exception as exc:
                self._sink_failed(exc)

    def _sink_failed(self, exc: Exception) -> None:
        """Record the first failure and wake ``run``, which stops every task and re-raises it.

        An event that cannot be recorded (or shown) means the run can no longer be trusted
        to leave a true record: stopping it beats running on unrecorded or waiting forever.
        """
        if self._fault is not None:
            return  # the run is stopping already; a broken journal refuses every later event
        self._fault = exc
        if self._all_ended is not None and not self._all_ended.done():
            self._all_ended.set_result(None)

    def request_cancel(self, reason: str, by: str | None = None) -> None:
        """Stop the run as a cancel does (every running task and its process tree, with the
        usual grace) and record it ``cancelled`` with ``reason`` as its error and ``by`` as
        ``cancelled_by``; ``run()`` then returns the record rather than raising.

        Call on the run's loop. A request after every task has ended changes nothing: the
        run ends as it would have.
        """
        if self._cancel is not None:
            return
        self._cancel = (reason, by)
        if self._all_ended is not None and not self._all_ended.done():
            self._all_ended.set_result(None)

    def _started_at(self, task_id: str) -> float | None:
        record = self.execution.tasks.get(task_id)
        return record.started_at if record else None

    # -- the run ------------------------------------------------------------------------
    async def run(self) -> Execution:
        """Execute every task; re-raises CancelledError after recording a cancelled run."""
        self._all_ended = asyncio.get_running_loop().create_future()
        refused = await self._start_executor()
        self.emit(self._run_started())
        if refused is not None:  # the executor cannot run this workflow: nothing ran
            await self._release()
            self._finish(State.CRASHED, refused)
            return self.execution
        for task in self.dag:
            self._remaining[task.id] = len(task.depends_on)  # type: ignore[index]
            for dep in task.depends_on:
                self._dependents.setdefault(dep, []).append(task)
        try:
            for task in self.dag:
                if not task.depends_on:
                    self._ready(task)
            if self.dag and not self._all_ended.done():
                await asyncio.shield(self._all_ended)
            if self._cancel is not None and self._fault is None and self._ended < len(self.dag):
                reason, by = self._cancel
                await self._stop(State.CANCELLED, reason, cancelled_by=by)
                return self.execution
        except asyncio.CancelledError:
            await self._stop(State.CANCELLED, "cancelled")
            self._raise_fault()  # the record is incomplete: that matters more than the cancel
            raise
        except BaseException as exc:
            await self._stop(State.CRASHED, f"engine error: {type(exc).__name__}: {exc}")
            raise
        if self._fault is not None:
            await self._stop(State.CRASHED, _fault_reason(self._fault))
            self._raise_fault()
        await self._release()
        self._finish(self._final_status(), None)
        self._raise_fault()  # a sink that failed on the last events
        return self.execution

    async def _stop(self, status: State, reason: str, *, cancelled_by: str | None = None) -> None:
        """Stop every running task (their process trees included), then end the run."""
        await self._cancel_all()
        await self._release()
        self._finish(status, reason, cancelled_by)

    def _raise_fault(self) -> None:
        if self._fault is not None:
            raise self._fault

    async def _start_executor(self) -> str | None:
        """Start the executor (connect to a cluster, check it fits); why not, if it cannot."""
        try:
            await self.executor.start(self.workflow, str(self.runner.project_root))
        except WorkflowError as exc:
            return str(exc)
        return None

    async def _release(self) -> None:
        """Let each task type used free what it holds for this run (kernels...), close an
        executor this run made, and end what the run's processes left running (before the
        run's end is recorded: a complete journal means nothing of the run runs)."""
        if self._owns_executor:
            try:
                await self.executor.close()
            except Exception as exc:  # a clean-up problem must not change the run's outcome
                print(f"jupyter-workflows: closing the executor failed: {exc}", file=sys.stderr)
        for task_type in self.runner.used_types:
            try:
                await task_type.after_run()
            except Exception as exc:  # a clean-up problem must not change the run's outcome
                print(
                    f"jupyter-workflows: {task_type.name} clean-up failed: {exc}", file=sys.stderr
                )
        try:
            await self.custody.close(self.kill_grace)
        except Exception as exc:  # a clean-up problem must not change the run's outcome
            print(f"jupyter-workflows: ending the run's processes failed: {exc}", file=sys.stderr)

    def _run_started(self) -> RunStarted:
        pid, host, pid_start = self.identity
        return RunStarted(
            execution_id=self.execution.id,
            workflow=self.workflow.name,
            version=self.workflow.version,
            file=self.file,
            project_root=str(self.runner.project_root),
            trigger=self.trigger,
            pid=pid,
            host=host,
            pid_start=pid_start,
            executor=self.executor.name,
            cluster=self.executor.address,
            dashboard=self.executor.dashboard,
            run_tag=self.custody.tag,
            cgroup=self.custody.cgroup,
            resumed_from=self.resumed_from,
            params=self.params or None,
            tasks=[
                {
                    "id": t.id,
                    "name": t.name,
                    "type": t.type,
                    "depends_on": list(t.depends_on),
                    "live_output": t.live_output,
                    "hash": self.hashes.get(t.id or ""),
                }
                for t in self.workflow.tasks
            ],
        )

    def _ready(self, task: AnyTask) -> None:
        """All dependencies of ``task`` ended: skip it or start it."""
        if self._fault is not None or self._cancel is not None:
            return  # the run is stopping: start nothing more
        blocked = [d for d in task.depends_on if d in self._blocking]
        if blocked:
            self._blocking.add(task.id)  # type: ignore[arg-type]
            self._skip(task, f"upstream task '{blocked[0]}' did not succeed")
            return
        if task.gate:
            try:
                run_it = parse_condition(task.gate).evaluate(self.scope)
            except Exception as exc:  # a bad reference at run time fails the task, visibly
                self._blocking.add(task.id)  # type: ignore[arg-type]
                self._end_unstarted(task, State.FAILED, f"condition cannot be evaluated: {exc}")
                return
            if not run_it:
                self._skip(task, f"condition is false: {task.gate}")
                return
        decision = self.reuse.decide(task, self.scope)
        if decision.action == "skip":
            self._skip(task, decision.reason or "skipped")
            return
        if decision.action == "fail":
            self._blocking.add(task.id)  # type: ignore[arg-type]
            self._end_unstarted(task, State.FAILED, decision.reason or "failed")
            return
        if decision.action == "reuse":
            self._reuse(task, decision)
            return
        job = asyncio.ensure_future(self._gated(task))
        self._running[task.id] = job  # type: ignore[index]
        job.add_done_callback(functools.partial(self._job_done, task))

    def _reuse(self, task: TaskBase, decision: Decision) -> None:
        """End ``task`` with the values an earlier execution recorded, its files included."""
        recorded = decision.recorded
        assert recorded is not None
        result, outputs = recorded.result, dict(recorded.outputs)
        if self.source_artifacts is not None and task.id:
            source = Path(self.source_artifacts(recorded.execution_id))
            try:
                if copy_artifacts(source, self.artifacts_dir, task.id):
                    result = moved(result, source, self.artifacts_dir)
                    outputs = moved(outputs, source, self.artifacts_dir)
            except OSError as exc:  # the values are reused all the same; the files are extra
                print(
                    f"jupyter-workflows: task '{task.id}': cannot copy the files of execution "
                    f"{recorded.execution_id}: {exc}",
                    file=sys.stderr,
                )
        self.views[task.id] = TaskView(  # type: ignore[index]
            result=result,
            exit_code=recorded.exit_code,
            status=str(State.SUCCEEDED),
            outputs=outputs,
            duration=0.0,
        )
        self.emit(
            TaskEnded(
                execution_id=self.execution.id,
                task_id=task.id,  # type: ignore[arg-type]
                status=str(State.SUCCEEDED),
                exit_code=recorded.exit_code,
                result=result,
                outputs=outputs,
                name=task.name,
                type=task.type,  # type: ignore[attr-defined]
                reused=decision.how,
                reused_from=recorded.execution_id,
                cache_key=decision.cache_key,
            )
        )
        self._task_done(task)

    async def _gated(self, task: AnyTask) -> None:
        if self._gate is None:
            self._gate = SiblingGate()  # made on the run's loop
        async with self._gate.hold(task.exclusive):
            await self.runner.run(task)

    def _job_done(self, task: TaskBase, _job: asyncio.Future[None]) -> None:
        self._task_done(task)

    def _skip(self, task: TaskBase, reason: str) -> None:
        self._end_unstarted(task, State.SKIPPED, reason)

    def _end_unstarted(self, task: TaskBase, status: State, reason: str) -> None:
        self.views[task.id] = TaskView(status=str(status), error=reason)  # type: ignore[index]
        self.emit(
            TaskEnded(
                execution_id=self.execution.id,
                task_id=task.id,  # type: ignore[arg-type]
                status=str(status),
                exit_code=None,
                error=reason,
                name=task.name,
                type=task.type,  # type: ignore[attr-defined]
            )
        )
        self._task_done(task)

    def _task_done(self, task: TaskBase) -> None:
        self._running.pop(task.id, None)  # type: ignore[arg-type]
        if self._stopping:
            return
        self.reuse.ended(task, self.views[task.id])  # type: ignore[index]
        record = self.execution.tasks.get(task.id)  # type: ignore[arg-type]
        if record and record.status in FAILURES and not task.continue_on_error:
            self._blocking.add(task.id)  # type: ignore[arg-type]
        self._ended += 1
        for dependent in self._dependents.get(task.id, ()):  # type: ignore[arg-type]
            self._remaining[dependent.id] -= 1  # type: ignore[index]
            if self._remaining[dependent.id] == 0:  # type: ignore[index]
                self._ready(dependent)
        if self._ended == len(self.dag) and self._all_ended and not self._all_ended.done():
            self._all_ended.set_result(None)

    async def _cancel_all(self) -> None:
        self._stopping = True  # tasks that end now must not start their dependents
        jobs = list(self._running.values())
        for job in jobs:
            job.cancel()
        if jobs:
            await asyncio.gather(*jobs, return_exceptions=True)

    def _final_status(self) -> State:
        """Failed when a task failed; crashed when one was lost to the infrastructure (its
        executor could not run it any more: no worker left), which is no fault of the tasks."""
        # A callback's failure is recorded but changes nothing: the task it follows decided.
        # A composite's children count through their parent (a child a parallel task
        # cancelled once another won is no failure of the run).
        allowed = {t.id for t in self.workflow.tasks if t.continue_on_error}
        allowed |= self.handlers | self.runner.callbacks_run
        failed = [
            record
            for record in self.execution.tasks.values()
            if record.status in FAILURES and record.id not in allowed and record.parent is None
        ]
        if any(record.status is State.CRASHED for record in failed):
            return State.CRASHED
        return State.FAILED if failed else State.SUCCEEDED

    def _finish(self, status: State, error: str | None, cancelled_by: str | None = None) -> None:
        for record in list(self.execution.tasks.values()):
            if record.status is State.PENDING:
                handler = record.id in self.handlers
                reason = "callback: its task did not end that way" if handler else str(status)
                state = State.SKIPPED if handler or status is not State.CANCELLED else status
                self.emit(
                    TaskEnded(
                        execution_id=self.execution.id,
                        task_id=record.id,
                        status=str(state),
                        error=reason,
                        name=record.name,
                        type=record.type,
                    )
                )
        if error is None and status is State.FAILED:
            failed = [t.id for t in self.execution.tasks.values() if t.status in FAILURES]
            error = "failed task(s): " + ", ".join(failed)
        self.emit(
            RunEnded(
                execution_id=self.execution.id,
                status=str(status),
                error=error,
                cancelled_by=cancelled_by,
            )
        )
        shutil.rmtree(self._workdir, ignore_errors=True)


def _fault_reason(fault: Exception) -> str:
    """The run's error when a sink stopped it."""
    if isinstance(fault, StoreError):
        return f"the run was stopped: its record cannot be written: {fault}"
    return f"the run was stopped: an event sink failed: {type(fault).__name__}: {fault}"


def template_environment(
    workflow: Workflow, project_root: Path, env: Mapping[str, str] | None
) -> dict[str, str]:
    """What ``${env.NAME}`` resolves against in a run of ``workflow`` (tasks' processes get
    it too, with their own ``environment`` on top)."""
    return {
        **_runner_environ(),
        "WORKFLOW_PROJECT_ROOT": str(project_root),  # for paths a tool needs absolute
        **workflow.defaults.environment,
        **(env or {}),
    }


def task_hashes(
    workflow: Workflow,
    project_root: Path,
    env: Mapping[str, str] | None,
    params: Mapping[str, Any] | None = None,
) -> dict[str, str]:
    """The definition hash of each top-level task (``fingerprint.definition_hash``)."""
    template_env = template_environment(workflow, project_root, env)
    return {
        t.id: definition_hash(t, workflow.defaults, template_env, project_root, params)
        for t in workflow.tasks
        if t.id
    }


def _runner_environ() -> dict[str, str]:
    """The process environment, with this interpreter's bin directory first on PATH.

    Like an activated virtualenv: ``python`` and ``workflow`` in a task mean the ones this
    runner is installed in, even when it was started as ``.venv/bin/workflow`` without
    activating anything.
    """
    environ = dict(os.environ)
    bindir = os.path.dirname(sys.executable)
    path = environ.get("PATH", os.defpath)
    if bindir and bindir not in path.split(os.pathsep):
        environ["PATH"] = bindir + os.pathsep + path
    return environ


def webhook_context(env: Mapping[str, str]) -> dict[str, Any] | None:
    """What ``${webhook...}`` resolves against: the request of a webhook-triggered run.

    ``workflow serve`` hands the body over as ``WEBHOOK_PAYLOAD`` (raw text), or only as
    ``WEBHOOK_PAYLOAD_FILE`` when it cannot be an environment value; a JSON body is parsed
    so ``${webhook.payload.ref}`` reaches into it. Being environment variables, they also let
    ``workflow run --env WEBHOOK_PAYLOAD=...`` replay a delivery by hand.
    """
    if "WEBHOOK_PAYLOAD" in env:
        raw = env["WEBHOOK_PAYLOAD"]
    elif env.get("WEBHOOK_PAYLOAD_FILE"):  # a body too large (or binary) for the environment
        try:
            raw = Path(env["WEBHOOK_PAYLOAD_FILE"]).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            raw = ""
    else:
        return None
    try:
        payload: Any = json.loads(raw)
    except ValueError:
        payload = raw
    return {
        "payload": payload,
        "path": env.get("WEBHOOK_PATH", ""),
        "delivery_id": env.get("WEBHOOK_DELIVERY_ID", ""),
        "event": env.get("WEBHOOK_EVENT", ""),
    }
