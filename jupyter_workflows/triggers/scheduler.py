"""``CronScheduler``: fire the slots of cron jobs into a ``RunQueue`` until told to stop.

Each job sleeps until its next slot on an injectable ``Clock`` (tests drive time without
waiting), plans the slots due since its mark (``cron.plan_slots``: on-time slots and the
catch-up policy), claims each slot in the shared ``SlotBook`` *before* doing anything with it
(a slot another scheduler claimed is neither run nor recorded here), then applies the overlap
policy while the job's previous run is still going:

- ``skip`` (default): the slot is recorded as a skipped execution, visible in the history;
- ``queue``: it waits for the previous run, at most one waiting; more are skipped (recorded);
- ``allow``: it starts anyway (the queue's concurrency still bounds it).

Several slots due at once (catch-up ``all`` after downtime) run one after another, unless the
overlap policy is ``allow``. Runs get ``SCHEDULED_TIME`` (ISO 8601 of the slot, in the
schedule's zone) in their environment and the trigger "cron". The scheduler does not own the
queue: after ``run`` returns, the caller shuts the queue down (cancelling what runs).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

from ..definition.cron import (
    ON_TIME_GRACE,
    CatchUp,
    CronSchedule,
    ScheduleError,
    SlotPlan,
    plan_slots,
)
from ..definition.durations import format_duration
from ..definition.model import CronTrigger, Workflow
from ..engine.queue import QueuedRun, QueueFull, RunQueue, record_unstarted
from ..errors import WorkflowError
from ..execution.records import Execution
from ..execution.states import State
from .slots import SlotBook

Overlap = Literal["skip", "queue", "allow"]
OVERLAPS = ("skip", "queue", "allow")
CATCHUPS = ("none", "latest", "all")
SKIP_REASON = "previous run still running (overlap: skip)"
QUEUE_FULL_REASON = "previous run still running and one already waiting (overlap: queue)"
STOPPED_REASON = "cancelled before it started (the scheduler stopped)"
RETRY_AFTER_ERROR = 5.0
OUTCOMES = {"run": "fired", "wait": "queued", "skip": "skipped"}  # as the slot file says


class Clock(Protocol):
    """Time as the scheduler sees it: wall-clock epoch seconds, and a stoppable sleep."""

    def now(self) -> float: ...

    async def sleep_until(self, moment: float, stop: asyncio.Event) -> None: ...


class SystemClock:
    """The real clock. Sleeps in steps of at most 30 s and re-reads the wall clock, so a clock
    that jumps (NTP, a suspended machine) is noticed."""

    def now(self) -> float:
        return time.time()

    async def sleep_until(self, moment: float, stop: asyncio.Event) -> None:
        while not stop.is_set():
            delay = moment - time.time()
            if delay <= 0:
                return
            try:
                await asyncio.wait_for(stop.wait(), timeout=min(delay, 30.0))
            except asyncio.TimeoutError:
                pass


@dataclass(frozen=True)
class CronJob:
    """A workflow file on a cron schedule; constructing one checks the schedule.

    ``timezone`` None means this machine's zone. ``seconds=True`` allows a leading seconds
    field (tests only). Raises ScheduleError (a WorkflowError) naming file and workflow.
    Each run loads ``file`` afresh, so edits to its tasks apply from the next slot on; the
    schedule itself is read once, here.
    """

    file: Path
    workflow: Workflow
    schedule: str
    timezone: str | None = None
    overlap: Overlap = "skip"
    catchup: CatchUp = "none"
    max_catchup: int = 100
    seconds: bool = False
    cron: CronSchedule = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        where = f"{self.file} (workflow '{self.workflow.name}')"
        if self.overlap not in OVERLAPS:
            raise ScheduleError(f"{where}: overlap must be one of {', '.join(OVERLAPS)}")
        if self.catchup not in CATCHUPS:
            raise ScheduleError(f"{where}: catchup must be one of {', '.join(CATCHUPS)}")
        if self.max_catchup < 1:
            raise ScheduleError(f"{where}: max_catchup must be at least 1")
        try:
            cron = CronSchedule.parse(self.schedule, self.timezone, seconds=self.seconds)
        except ScheduleError as exc:
            raise ScheduleError(f"{where}: {exc}") from None
        object.__setattr__(self, "cron", cron)

    @property
    def name(self) -> str:
        return self.workflow.name

    @classmethod
    def from_workflow(
        cls,
        file: Path,
        workflow: Workflow,
        *,
        cron: str | None = None,
        tz: str | None = None,
        seconds: bool = False,
    ) -> CronJob | None:
        """The job of a workflow's cron trigger, ``cron``/``tz`` overriding its schedule and
        zone; None when there is neither a cron trigger nor ``cron``."""
        trigger = workflow.trigger if isinstance(workflow.trigger, CronTrigger) else None
        if trigger is None and cron is None:
            return None
        config = trigger.config if trigger is not None else None
        schedule = cron if cron is not None else config.schedule  # type: ignore[union-attr]
        return cls(
            file=Path(file),
            workflow=workflow,
            schedule=schedule,
            timezone=tz if tz is not None else (config.timezone if config else None),
            overlap=config.overlap if config else "skip",
            catchup=config.catchup if config else "none",
            max_catchup=config.max_catchup if config else 100,
            seconds=seconds,
        )


@dataclass
class _JobState:
    job: CronJob
    active: QueuedRun | None = None  # the newest submitted run
    backlog: deque[tuple[float, str]] = field(default_factory=deque)  # claimed, not submitted
    drainer: asyncio.Task[None] | None = None

    @property
    def busy(self) -> bool:
        running = self.active is not None and not self.active.done.done()
        return running or bool(self.backlog)


class CronScheduler:
    """Fires the slots of ``jobs`` into ``queue`` until ``run``'s stop event is set.

    ``store_dir`` is the execution store's directory (``default_store_path(root)``); the slot
    marks live in its ``schedules/`` folder, shared with every other scheduler of that store.
    ``log`` gets one line per fired, queued or skipped slot and per ended run.
    """

    def __init__(
        self,
        queue: RunQueue,
        jobs: list[CronJob],
        *,
        store_dir: Path,
        clock: Clock | None = None,
        log: Callable[[str], None] = print,
    ):
        self.queue = queue
        self.book = SlotBook(store_dir)
        self.clock: Clock = clock or SystemClock()
        self.log = log
        self._states: list[_JobState] = []
        for job in jobs:
            if any(state.job.name == job.name for state in self._states):
                log(
                    f"{job.name}: ignoring {job.file}: a workflow of that name is already "
                    "scheduled (slots are kept per workflow name)"
                )
                continue
            self._states.append(_JobState(job))

    async def run(self, stop: asyncio.Event) -> None:
        """Fire slots until ``stop`` is set; slots waiting for a previous run are then
        recorded as cancelled. Runs already submitted stay with the queue."""
        loops = [asyncio.create_task(self._loop(state, stop)) for state in self._states]
        try:
            await asyncio.gather(*loops)
        finally:
            for task in loops:
                task.cancel()
            await asyncio.gather(*loops, return_exceptions=True)
            await self._abandon_backlogs()

    async def _loop(self, state: _JobState, stop: asyncio.Event) -> None:
        job = state.job
        mark = await self._begin(job, stop)
        if mark is None:
            return
        grace = 0.0  # at start-up every due slot was missed while we were not running
        while not stop.is_set():
            now = self.clock.now()
            wake = None
            try:
                shared = self.book.mark(job.name)  # another scheduler may be ahead of us
                mark = mark if shared is None else max(mark, shared)
                plan = plan_slots(
                    job.cron,
                    mark,
                    now,
                    catchup=job.catchup,
                    max_catchup=job.max_catchup,
                    grace=grace,
                )
                await self._handle(state, plan)
                if plan.newest is not None:
                    mark = max(mark, plan.newest)
            except Exception as exc:  # a store or disk fault: keep the other slots coming
                self.log(f"{job.name}: error while firing slots: {exc}; retrying shortly")
                wake = now + RETRY_AFTER_ERROR
            grace = ON_TIME_GRACE
            await self.clock.sleep_until(wake or job.cron.next_after(max(mark, now)), stop)

    async def _begin(self, job: CronJob, stop: asyncio.Event) -> float | None:
        """The job's stored mark; a store that cannot be read (locked, a damaged state file)
        is retried without stopping the other jobs. None once ``stop`` is set."""
        while not stop.is_set():
            try:
                return self.book.begin(job.name, self.clock.now())
            except Exception as exc:
                self.log(f"{job.name}: cannot read its schedule state: {exc}; retrying shortly")
                await self.clock.sleep_until(self.clock.now() + RETRY_AFTER_ERROR, stop)
        return None

    async def _handle(self, state: _JobState, plan: SlotPlan) -> None:
        job = state.job
        if plan.missed is not None:
            first, last = (job.cron.iso(slot) for slot in plan.missed)
            span = first if first == last else f"{first} to {last}"
            self.log(f"{job.name}: missed slot(s) {span}: not run (catchup: {job.catchup})")
            if not plan.fire:
                self.book.claim(job.name, plan.missed[1], outcome="missed")
        in_turn = len(plan.fire) > 1 and job.overlap != "allow"
        for slot in plan.fire:
            await self._at_slot(state, slot, in_turn=in_turn)

    async def _at_slot(self, state: _JobState, slot: float, *, in_turn: bool) -> None:
        job, when = state.job, state.job.cron.iso(slot)
        execution_id = str(uuid.uuid4())
        decision, reason = self._decide(state, in_turn)
        outcome = OUTCOMES[decision]
        if not self.book.claim(job.name, slot, outcome=outcome, execution_id=execution_id):
            self.log(f"{job.name}: slot {when} already taken by another scheduler")
            return
        if decision == "run":
            await self._submit(state, slot, execution_id)
        elif decision == "wait":
            state.backlog.append((slot, execution_id))
            if state.drainer is None or state.drainer.done():
                state.drainer = asyncio.create_task(self._drain(state))
            self.log(f"{job.name}: slot {when}: run {execution_id} queued, {reason}")
        else:
            self.log(f"{job.name}: slot {when}: skipped, {reason} (execution {execution_id})")
            await self._record(job, execution_id, State.SKIPPED, reason)

    def _decide(self, state: _JobState, in_turn: bool) -> tuple[str, str]:
        """Decide between "run", "wait" (for the previous run) and "skip", with a reason."""
        overlap = state.job.overlap
        if in_turn:
            return "wait", "catching up: one run after another"
        if not state.busy or overlap == "allow":
            return "run", ""
        if overlap == "queue":
            if state.backlog:
                return "skip", QUEUE_FULL_REASON
            return "wait", "waits for the previous run (overlap: queue)"
        return "skip", SKIP_REASON

    async def _drain(self, state: _JobState) -> None:
        """Submit the waiting slots of one job, each after the previous run ended."""
        while state.backlog:
            active = state.active
            if active is not None and not active.done.done():
                await asyncio.wait([active.done])
                continue
            slot, execution_id = state.backlog.popleft()
            await self._submit(state, slot, execution_id)

    async def _submit(self, state: _JobState, slot: float, execution_id: str) -> None:
        job, when = state.job, state.job.cron.iso(slot)
        try:
            queued = self.queue.submit(
                job.file, env={"SCHEDULED_TIME": when}, trigger="cron", execution_id=execution_id
            )
        except QueueFull as exc:
            self.log(f"{job.name}: slot {when}: skipped, the run queue is full ({exc})")
            await self._record(job, execution_id, State.SKIPPED, f"run queue full: {exc}")
            return
        except (WorkflowError, RuntimeError) as exc:  # the file broke since, or shutting down
            self.log(f"{job.name}: slot {when}: cannot start: {exc}")
            await self._record(job, execution_id, State.FAILED, f"could not start: {exc}")
            return
        state.active = queued
        queued.done.add_done_callback(lambda done: self._log_end(job, when, execution_id, done))
        self.log(f"{job.name}: slot {when}: started run {execution_id}")

    def _log_end(
        self, job: CronJob, when: str, execution_id: str, done: asyncio.Future[Execution]
    ) -> None:
        if done.cancelled():
            outcome = "cancelled"
        elif done.exception() is not None:
            outcome = f"error: {done.exception()}"
        else:
            execution = done.result()
            outcome = f"{execution.status} in {format_duration(execution.duration)}"
        self.log(f"{job.name}: run {execution_id} (slot {when}) ended: {outcome}")

    async def _record(self, job: CronJob, execution_id: str, status: State, reason: str) -> None:
        # The store write opens the index under its lock: off the loop, so webhooks served by
        # the same daemon keep answering meanwhile.
        await asyncio.to_thread(
            record_unstarted,
            self.queue.orchestrator,
            job.workflow,
            execution_id=execution_id,
            status=status,
            reason=reason,
            trigger="cron",
            file=str(job.file),
        )

    async def _abandon_backlogs(self) -> None:
        for state in self._states:
            if state.drainer is not None:
                state.drainer.cancel()
                await asyncio.gather(state.drainer, return_exceptions=True)
            while state.backlog:
                slot, execution_id = state.backlog.popleft()
                self.log(f"{state.job.name}: slot {state.job.cron.iso(slot)}: {STOPPED_REASON}")
                await self._record(state.job, execution_id, State.CANCELLED, STOPPED_REASON)


def describe(job: CronJob, now: float, count: int = 3) -> list[str]:
    """Lines saying what is scheduled and when it fires next (for a daemon's start-up)."""
    cron = job.cron
    head = (
        f"{job.name} ({job.file}): '{job.schedule}' in {cron.zone_name}; "
        f"overlap {job.overlap}, catch-up {job.catchup}"
    )
    return [head, *(f"  next: {cron.iso(slot)}" for slot in cron.upcoming(now, count))]
