"""CronScheduler on a fake clock, with a real RunQueue, orchestrator, store and shell tasks.

The clock only moves when a test moves it; ``FakeClock.advance`` then waits until every
scheduler loop has handled the new time and gone back to sleep, so no test waits for minutes.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Coroutine
from datetime import datetime, timezone
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

from jupyter_workflows.definition.cron import ScheduleError
from jupyter_workflows.engine import WorkflowOrchestrator
from jupyter_workflows.engine.queue import RunQueue
from jupyter_workflows.store import ExecutionStore, default_store_path
from jupyter_workflows.triggers.scheduler import (
    QUEUE_FULL_REASON,
    SKIP_REASON,
    STOPPED_REASON,
    CronJob,
    CronScheduler,
)
from jupyter_workflows.triggers.slots import SlotBook, slot_key

T0 = datetime(2026, 1, 5, 10, 0, tzinfo=timezone.utc).timestamp()
MIN = 60.0


def slot(minutes: float) -> float:
    return T0 + minutes * MIN


def iso(minutes: float) -> str:
    return datetime.fromtimestamp(slot(minutes), timezone.utc).isoformat()


class FakeClock:
    """Time that moves only when told; knows which scheduler loops sleep until when."""

    def __init__(self, start: float):
        self.t = start
        self.sleepers: dict[int, float] = {}

    def now(self) -> float:
        return self.t

    async def sleep_until(self, moment: float, stop: asyncio.Event) -> None:
        key = object()
        self.sleepers[id(key)] = moment
        try:
            while self.t < moment and not stop.is_set():
                await asyncio.sleep(0.002)
        finally:
            del self.sleepers[id(key)]

    async def settle(self, loops: int) -> None:
        """Wait until ``loops`` loops sleep until a moment still ahead."""
        deadline = time.monotonic() + 10
        while len(self.sleepers) != loops or any(m <= self.t for m in self.sleepers.values()):
            assert time.monotonic() < deadline, f"schedulers did not settle: {self.sleepers}"
            await asyncio.sleep(0.002)

    async def advance(self, moment: float, loops: int = 1) -> None:
        self.t = moment
        await self.settle(loops)


class Harness:
    """A project with a shell workflow that appends its SCHEDULED_TIME to ``fired.txt``.

    With ``block=True`` each run then waits until the file ``release`` exists.
    """

    def __init__(self, project: Path, *, block: bool = False, **config: Any):
        self.project = project
        self.fired_file = project / "fired.txt"
        self.release_file = project / "release"
        command = f'printf "%s\\n" "$SCHEDULED_TIME" >> {self.fired_file}'
        if block:
            command += f"; while [ ! -e {self.release_file} ]; do sleep 0.01; done"
        cron = {"schedule": "*/5 * * * *", "timezone": "UTC", **config}
        trigger = {"type": "cron", "config": cron}
        definition = {
            "name": "tick",
            "trigger": trigger,
            "tasks": [{"id": "t", "type": "shell", "command": command}],
        }
        self.file = project / "tick.json"
        self.file.write_text(json.dumps(definition))
        self.store_dir = default_store_path(project)
        self.lines: list[str] = []

    def job(self, **overrides: Any) -> CronJob:
        orchestrator = WorkflowOrchestrator(self.project)
        workflow, _ = orchestrator.load(self.file)
        job = CronJob.from_workflow(self.file, workflow)
        assert job is not None
        return job if not overrides else _replace(job, **overrides)

    def scheduler(
        self, clock: FakeClock, job: CronJob | None = None, **queue_options: Any
    ) -> CronScheduler:
        queue = RunQueue(WorkflowOrchestrator(self.project, kill_grace=0.5), **queue_options)
        return CronScheduler(
            queue, [job or self.job()], store_dir=self.store_dir, clock=clock,
            log=self.lines.append,
        )  # fmt: skip

    def fired(self) -> list[str]:
        if not self.fired_file.exists():
            return []
        return self.fired_file.read_text().splitlines()

    def history(self, **filters: Any) -> list[Any]:
        return ExecutionStore(self.store_dir).history(limit=None, **filters)

    def execution(self, execution_id: str) -> Any:
        return ExecutionStore(self.store_dir).get_execution(execution_id)


def _replace(job: CronJob, **changes: Any) -> CronJob:
    import dataclasses

    return dataclasses.replace(job, **changes)


async def until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


def scenario(body: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(body())


class Running:
    """A scheduler running in the background; ``stop()`` stops it and shuts its queue down."""

    def __init__(self, scheduler: CronScheduler, clock: FakeClock):
        self.scheduler = scheduler
        self.clock = clock
        self.stop_event = asyncio.Event()
        self.task = asyncio.create_task(scheduler.run(self.stop_event))

    async def started(self, loops: int = 1) -> Running:
        await self.clock.settle(loops)
        return self

    async def idle(self) -> None:
        """Wait until no run of this scheduler runs or waits."""
        queue = self.scheduler.queue
        await until(lambda: queue.running == 0 and queue.waiting == 0)

    async def stop(self, *, cancel: bool = False) -> None:
        self.stop_event.set()
        await self.task
        await self.scheduler.queue.shutdown(cancel=cancel)


# -- firing -------------------------------------------------------------------------------------


def test_each_slot_runs_once_with_its_scheduled_time(project: Path) -> None:
    h = Harness(project)

    async def body() -> None:
        clock = FakeClock(slot(0.5))
        running = await Running(h.scheduler(clock), clock).started()
        await clock.advance(slot(4))  # no slot yet
        assert h.fired() == []
        await clock.advance(slot(5))
        await until(lambda: len(h.fired()) == 1)
        await running.idle()
        await clock.advance(slot(10) + 3)  # a few seconds late: still on time
        await until(lambda: len(h.fired()) == 2)
        await running.stop()

    scenario(body)
    assert h.fired() == [iso(5), iso(10)]
    rows = h.history()
    assert [(r.status, r.trigger) for r in rows] == [("succeeded", "cron")] * 2
    started = [line for line in h.lines if "started run" in line]
    assert len(started) == 2
    assert all(line.startswith("tick: slot ") for line in started)
    assert iso(5) in started[0] and rows[1].id in started[0]
    assert any(f"run {rows[0].id}" in line and "ended: succeeded" in line for line in h.lines)


def test_overlap_skip_records_the_skipped_slot(project: Path) -> None:
    h = Harness(project, block=True)

    async def body() -> None:
        clock = FakeClock(slot(0))
        running = await Running(h.scheduler(clock), clock).started()
        await clock.advance(slot(5))
        await until(lambda: len(h.fired()) == 1)
        await clock.advance(slot(10))  # the 10:05 run still waits for its release
        h.release_file.touch()
        await until(lambda: running.scheduler.queue.running == 0)
        await clock.advance(slot(15))
        await until(lambda: len(h.fired()) == 2)
        h.release_file.touch()
        await running.stop()

    scenario(body)
    assert h.fired() == [iso(5), iso(15)]
    skipped = h.history(status="skipped")
    assert len(skipped) == 1 and skipped[0].trigger == "cron"
    assert h.execution(skipped[0].id).error == SKIP_REASON
    assert [r.status for r in h.history()].count("succeeded") == 2
    assert any(iso(10) in line and "skipped" in line and skipped[0].id in line for line in h.lines)


def test_overlap_queue_keeps_one_waiting_and_skips_the_rest(project: Path) -> None:
    h = Harness(project, block=True, overlap="queue")

    async def body() -> None:
        clock = FakeClock(slot(0))
        running = await Running(h.scheduler(clock), clock).started()
        await clock.advance(slot(5))
        await until(lambda: len(h.fired()) == 1)
        await clock.advance(slot(10))  # waits for the 10:05 run
        await clock.advance(slot(15))  # one is already waiting: skipped
        assert h.fired() == [iso(5)]
        h.release_file.touch()
        await until(lambda: len(h.fired()) == 2)
        await running.stop()

    scenario(body)
    assert h.fired() == [iso(5), iso(10)]
    rows = {r.status: r for r in h.history()}
    assert h.execution(rows["skipped"].id).error == QUEUE_FULL_REASON
    first, second = sorted(
        (h.execution(r.id) for r in h.history(status="succeeded")), key=lambda e: e.started_at
    )
    assert second.started_at >= first.ended_at  # the queued run waited for the first one


def test_overlap_allow_runs_alongside_the_previous_run(project: Path) -> None:
    h = Harness(project, block=True, overlap="allow")

    async def body() -> None:
        clock = FakeClock(slot(0))
        running = await Running(h.scheduler(clock), clock).started()
        await clock.advance(slot(5))
        await clock.advance(slot(10))
        await until(lambda: len(h.fired()) == 2)  # both started before either could end
        h.release_file.touch()
        await running.stop()

    scenario(body)
    assert h.fired() == [iso(5), iso(10)]
    assert len(h.history(status="succeeded")) == 2


def test_a_full_run_queue_records_the_slot_as_skipped(project: Path) -> None:
    h = Harness(project, block=True, overlap="allow")

    async def body() -> None:
        clock = FakeClock(slot(0))
        scheduler = h.scheduler(clock, concurrency=1, max_waiting=0)
        running = await Running(scheduler, clock).started()
        await clock.advance(slot(5))
        await until(lambda: len(h.fired()) == 1)
        await clock.advance(slot(10))
        h.release_file.touch()
        await running.stop()

    scenario(body)
    skipped = h.history(status="skipped")
    assert len(skipped) == 1
    assert h.execution(skipped[0].id).error.startswith("run queue full: ")
    assert any("the run queue is full" in line for line in h.lines)


def test_stopping_records_a_waiting_slot_as_cancelled(project: Path) -> None:
    h = Harness(project, block=True, overlap="queue")

    async def body() -> None:
        clock = FakeClock(slot(0))
        running = await Running(h.scheduler(clock), clock).started()
        await clock.advance(slot(5))
        await until(lambda: len(h.fired()) == 1)
        await clock.advance(slot(10))
        await running.stop(cancel=True)  # the 10:05 run is cancelled by the queue

    scenario(body)
    statuses = sorted(r.status for r in h.history())
    assert statuses == ["cancelled", "cancelled"]
    errors = {h.execution(r.id).error for r in h.history()}
    assert STOPPED_REASON in errors
    assert h.fired() == [iso(5)]


# -- restarts and catch-up ----------------------------------------------------------------------


async def fire_first_slot_then_stop(h: Harness, job: CronJob | None = None) -> None:
    clock = FakeClock(slot(1))
    running = await Running(h.scheduler(clock, job), clock).started()
    await clock.advance(slot(5))
    await until(lambda: len(h.fired()) == 1)
    await running.stop()


def test_a_restart_never_repeats_a_slot(project: Path) -> None:
    h = Harness(project, catchup="all")

    async def body() -> None:
        await fire_first_slot_then_stop(h)
        clock = FakeClock(slot(5))  # restarted at once, within the slot's own minute
        running = await Running(h.scheduler(clock), clock).started()
        await clock.advance(slot(5) + 30)
        await clock.advance(slot(10))
        await until(lambda: len(h.fired()) == 2)
        await running.stop()

    scenario(body)
    assert h.fired() == [iso(5), iso(10)]
    assert SlotBook(h.store_dir).mark("tick") == slot(10)


@pytest.mark.parametrize(
    ("catchup", "max_catchup", "expected", "missed"),
    [
        ("none", 100, [], f"{iso(10)} to {iso(20)}"),
        ("latest", 100, [20], f"{iso(10)} to {iso(15)}"),
        ("all", 100, [10, 15, 20], None),
        ("all", 2, [15, 20], iso(10)),
    ],
)
def test_catch_up_after_downtime(
    project: Path, catchup: str, max_catchup: int, expected: list[int], missed: str | None
) -> None:
    h = Harness(project, catchup=catchup, max_catchup=max_catchup)

    async def body() -> None:
        await fire_first_slot_then_stop(h)
        clock = FakeClock(slot(23))  # down from 10:05+ to 10:23: 10:10, 10:15, 10:20 missed
        running = await Running(h.scheduler(clock), clock).started()
        await until(lambda: len(h.fired()) == 1 + len(expected))
        await running.idle()
        await clock.advance(slot(25))  # then on schedule again
        await until(lambda: len(h.fired()) == 2 + len(expected))
        await running.stop()

    scenario(body)
    assert h.fired() == [iso(5), *(iso(m) for m in expected), iso(25)]
    missed_lines = [line for line in h.lines if "missed slot(s)" in line]
    if missed is None:
        assert missed_lines == []
    else:
        assert len(missed_lines) == 1 and missed in missed_lines[0]
    runs = sorted((h.execution(r.id) for r in h.history()), key=lambda e: e.started_at)
    assert all(a.ended_at <= b.started_at for a, b in pairwise(runs))  # one after another


def test_a_slot_that_fell_due_while_down_is_missed_however_recent(project: Path) -> None:
    """At start-up nothing is on time: with catchup none, 10:10 is not run at 10:10:20."""
    h = Harness(project)

    async def body() -> None:
        await fire_first_slot_then_stop(h)
        clock = FakeClock(slot(10) + 20)
        running = await Running(h.scheduler(clock), clock).started()
        assert SlotBook(h.store_dir).mark("tick") == slot(10)  # handled: given up for good
        await clock.advance(slot(15))
        await until(lambda: len(h.fired()) == 2)
        await running.stop()

    scenario(body)
    assert h.fired() == [iso(5), iso(15)]
    assert any(f"missed slot(s) {iso(10)}: not run" in line for line in h.lines)


def test_first_start_owes_nothing_from_before_it(project: Path) -> None:
    h = Harness(project, catchup="all")

    async def body() -> None:
        clock = FakeClock(slot(12))
        running = await Running(h.scheduler(clock), clock).started()
        await clock.advance(slot(14))
        await running.stop()
        assert h.fired() == []
        # Stopped before any slot fired, restarted after 10:15: that slot is owed.
        clock = FakeClock(slot(17))
        running = await Running(h.scheduler(clock), clock).started()
        await until(lambda: len(h.fired()) == 1)
        await running.stop()

    scenario(body)
    assert h.fired() == [iso(15)]


def test_dst_fall_back_fires_the_repeated_slot_once(project: Path) -> None:
    h = Harness(project, schedule="30 2 * * *", timezone="Europe/Zurich")
    zurich_day = datetime(2026, 10, 25, 0, 0, tzinfo=timezone.utc).timestamp()

    async def body() -> None:
        clock = FakeClock(zurich_day - 3600)  # 2026-10-25 00:00 CEST
        running = await Running(h.scheduler(clock), clock).started()
        # In UTC hours of the day: 02:30 CEST, 02:30 CET (again), 03:30 CET, next day 02:30 CET.
        for hour in (0.5, 1.5, 2.5, 25.5):
            await clock.advance(zurich_day + hour * 3600)
            await running.idle()
        await until(lambda: len(h.fired()) == 2)
        await running.stop()

    scenario(body)
    assert h.fired() == ["2026-10-25T02:30:00+02:00", "2026-10-26T02:30:00+01:00"]


# -- two schedulers, one store ------------------------------------------------------------------


def test_two_schedulers_on_one_store_run_each_slot_exactly_once(project: Path) -> None:
    h = Harness(project)

    async def body() -> None:
        clock = FakeClock(slot(1))
        one, two = h.scheduler(clock), h.scheduler(clock)
        for scheduler in (one, two):
            # Each reads a stale mark, as a process does that planned just before the other
            # claimed: only the claim stands between the slot and a second run.
            scheduler.book.mark = lambda workflow_name: None  # type: ignore[method-assign,assignment]
        running = [Running(one, clock), Running(two, clock)]
        await clock.settle(2)
        for minutes in (5, 10, 15):
            await clock.advance(slot(minutes), loops=2)
            for each in running:
                await each.idle()
        await until(lambda: len(h.fired()) == 3)
        for each in running:
            await each.stop()

    scenario(body)
    assert h.fired() == [iso(5), iso(10), iso(15)]
    assert len(h.history()) == 3  # the losing scheduler recorded nothing either
    taken = [line for line in h.lines if "already taken by another scheduler" in line]
    assert len(taken) == 3


def test_two_schedulers_catching_up_share_the_missed_slots(project: Path) -> None:
    h = Harness(project, catchup="all")

    async def body() -> None:
        await fire_first_slot_then_stop(h)
        clock = FakeClock(slot(23))
        one = Running(h.scheduler(clock), clock)
        two = Running(h.scheduler(clock), clock)
        await clock.settle(2)
        await until(lambda: len(h.fired()) == 4)
        await one.stop()
        await two.stop()

    scenario(body)
    assert sorted(h.fired()) == [iso(5), iso(10), iso(15), iso(20)]
    assert len(h.history()) == 4


# -- jobs ---------------------------------------------------------------------------------------


def test_cron_job_from_a_workflow_and_its_overrides(project: Path) -> None:
    h = Harness(project, timezone="Europe/Zurich", overlap="queue", catchup="latest")
    workflow, _ = WorkflowOrchestrator(project).load(h.file)
    job = CronJob.from_workflow(h.file, workflow)
    assert job is not None
    assert (job.schedule, job.timezone, job.overlap, job.catchup) == (
        "*/5 * * * *",
        "Europe/Zurich",
        "queue",
        "latest",
    )
    override = CronJob.from_workflow(h.file, workflow, cron="0 6 * * 1", tz="UTC")
    assert override is not None
    assert (override.schedule, override.timezone, override.overlap) == ("0 6 * * 1", "UTC", "queue")
    manual = workflow.model_copy(update={"trigger": None})
    assert CronJob.from_workflow(h.file, manual) is None
    only_cron = CronJob.from_workflow(h.file, manual, cron="@hourly")
    assert only_cron is not None and only_cron.overlap == "skip" and only_cron.catchup == "none"


def test_cron_job_errors_name_the_file_and_workflow(project: Path) -> None:
    h = Harness(project)
    workflow, _ = WorkflowOrchestrator(project).load(h.file)
    with pytest.raises(ScheduleError) as caught:
        CronJob.from_workflow(h.file, workflow, cron="0 */6 * *")
    assert str(h.file) in str(caught.value) and "workflow 'tick'" in str(caught.value)
    assert "minute hour day-of-month month day-of-week" in str(caught.value)
    with pytest.raises(ScheduleError, match="unknown time zone 'Nowhere/Land'"):
        CronJob.from_workflow(h.file, workflow, tz="Nowhere/Land")


def test_slot_keys_are_safe_file_names_and_distinct() -> None:
    assert slot_key("etl") == "etl"
    names = ["a/b", "a_b", "../x", "a b", "ünï"]
    keys = [slot_key(name) for name in names]
    assert len(set(keys)) == len(keys)
    assert all("/" not in key and not key.startswith(".") for key in keys)


def test_claims_are_atomic_and_monotonic(tmp_path: Path) -> None:
    book = SlotBook(tmp_path)
    assert book.mark("w") is None
    assert book.begin("w", 100.0) == 100.0
    assert book.begin("w", 500.0) == 100.0  # an existing mark is kept
    assert not book.claim("w", 100.0, outcome="fired")
    assert book.claim("w", 160.0, outcome="fired", execution_id="x")
    assert not book.claim("w", 160.0, outcome="fired")
    assert not book.claim("w", 130.0, outcome="fired")
    state = json.loads((tmp_path / "schedules" / "w.json").read_text())
    assert (state["mark"], state["execution_id"], state["outcome"]) == (160.0, "x", "fired")
    assert SlotBook(tmp_path).mark("w") == 160.0


def test_a_damaged_schedule_state_stops_only_its_own_job(project: Path) -> None:
    h = Harness(project)
    healthy = h.job()
    broken = _replace(healthy, workflow=healthy.workflow.model_copy(update={"name": "broken"}))
    state_dir = h.store_dir / "schedules"
    state_dir.mkdir(parents=True)
    (state_dir / f"{slot_key('broken')}.json").write_text("{not json")

    async def body() -> None:
        clock = FakeClock(slot(0.5))
        queue = RunQueue(WorkflowOrchestrator(project, kill_grace=0.5))
        scheduler = CronScheduler(queue, [healthy, broken], store_dir=h.store_dir, clock=clock,
                                  log=h.lines.append)  # fmt: skip
        running = await Running(scheduler, clock).started(loops=2)
        await clock.advance(slot(5), loops=2)
        await until(lambda: len(h.fired()) == 1)  # the healthy job fires on time
        await running.idle()
        await running.stop()

    scenario(body)
    assert h.fired() == [iso(5)]
    assert any("broken: cannot read its schedule state" in line and "not valid JSON" in line
               for line in h.lines)  # fmt: skip
