"""RunQueue: bounded concurrency and wait list, cancel by id, a shutdown that records every id it
handed out. Real workflows (shell tasks) recorded in a real store."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from jupyter_workflows.engine import WorkflowOrchestrator
from jupyter_workflows.engine.queue import QueueFull, RunQueue
from jupyter_workflows.errors import ValidationError
from jupyter_workflows.execution.states import State
from jupyter_workflows.store import ExecutionStore, default_store_path

# Each run writes a marker named by $N, then waits until the file "release" exists.
WAIT = "touch started-$N; while [ ! -f release ]; do sleep 0.02; done"
BLOCKING = {"name": "blocking", "tasks": [{"id": "t", "type": "shell", "command": WAIT}]}


async def until(check, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.02)


def history(project: Path) -> dict[str, tuple[str, str | None]]:
    store = ExecutionStore(default_store_path(project))
    rows = store.history(limit=None)
    return {r.id: (r.status, store.get_execution(r.id).error) for r in rows}


def test_at_most_concurrency_run_and_max_waiting_wait(project: Path, monkeypatch) -> None:
    monkeypatch.chdir(project)  # the shell tasks' markers land in the project

    async def scenario() -> None:
        queue = RunQueue(WorkflowOrchestrator(project), concurrency=2, max_waiting=1)
        runs = [queue.submit(BLOCKING, env={"N": str(n)}, trigger="api") for n in range(3)]
        full = r"0 run\(s\) running and 3 waiting \(limits: 2 running, 1 waiting\)"
        with pytest.raises(QueueFull, match=full):
            queue.submit(BLOCKING, env={"N": "3"})
        await until(lambda: queue.running == 2)
        await asyncio.sleep(0.3)
        assert (queue.running, queue.waiting) == (2, 1)
        assert sorted(p.name for p in project.glob("started-*")) == ["started-0", "started-1"]
        (project / "release").touch()
        executions = [await run.done for run in runs]
        assert [e.status for e in executions] == [State.SUCCEEDED] * 3
        assert {e.trigger for e in executions} == {"api"}
        assert (queue.running, queue.waiting) == (0, 0)

    asyncio.run(scenario())


def test_cancel_by_id_and_shutdown_record_every_run(project: Path, monkeypatch) -> None:
    monkeypatch.chdir(project)

    async def scenario() -> dict[str, str]:
        queue = RunQueue(WorkflowOrchestrator(project), concurrency=1, max_waiting=5)
        first, second, third = (queue.submit(BLOCKING, env={"N": str(n)}) for n in range(3))
        await until(lambda: (project / "started-0").exists())
        assert queue.cancel(second.execution_id) is True  # waiting: never starts
        assert queue.cancel("no-such-id") is False
        await until(lambda: second.done.done())
        await queue.shutdown()  # first is running, third waiting
        assert first.done.cancelled() and third.done.cancelled()
        with pytest.raises(RuntimeError, match="shut down"):
            queue.submit(BLOCKING)
        return {"first": first.execution_id, "second": second.execution_id,
                "third": third.execution_id}  # fmt: skip

    ids = asyncio.run(scenario())
    recorded = history(project)
    assert recorded[ids["first"]][0] == "cancelled"
    assert recorded[ids["second"]] == ("cancelled", "cancelled before it started (cancelled)")
    assert recorded[ids["third"]] == ("cancelled", "cancelled before it started (shutting down)")
    assert not (project / "started-1").exists() and not (project / "started-2").exists()


def test_a_broken_workflow_is_refused_at_submit(project: Path) -> None:
    async def scenario() -> None:
        queue = RunQueue(WorkflowOrchestrator(project))
        with pytest.raises(ValidationError):
            queue.submit({"name": "x", "tasks": [{"id": "a", "type": "shel"}]})
        assert (queue.running, queue.waiting) == (0, 0)

    asyncio.run(scenario())


def test_a_run_cancelled_before_its_first_step_frees_its_place(project: Path) -> None:
    async def scenario() -> str:
        queue = RunQueue(WorkflowOrchestrator(project), concurrency=1, max_waiting=1)
        queued = queue.submit(BLOCKING, env={"N": "0"})
        assert queue.cancel(queued.execution_id) is True  # same turn: its task never started
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        assert (queue.running, queue.waiting) == (0, 0)
        assert queued.done.cancelled()
        for n in (1, 2):  # both places are free again
            queue.submit(BLOCKING, env={"N": str(n)})
        await queue.shutdown()
        return queued.execution_id

    execution_id = asyncio.run(scenario())
    assert history(project)[execution_id] == (
        "cancelled", "cancelled before it started (cancelled)"
    )  # fmt: skip


def test_a_run_that_cannot_start_is_recorded_and_the_queue_goes_on(project: Path) -> None:
    class DiskFull(WorkflowOrchestrator):
        fail = True

        def prepare(self, *args, **kwargs):
            if DiskFull.fail:
                DiskFull.fail = False
                raise OSError(28, "No space left on device")
            return super().prepare(*args, **kwargs)

    ok = {"name": "ok", "tasks": [{"id": "t", "type": "shell", "command": "true"}]}

    async def scenario() -> tuple[str, str]:
        queue = RunQueue(DiskFull(project), concurrency=1, max_waiting=5)
        broken, fine = queue.submit(ok), queue.submit(ok)
        with pytest.raises(OSError, match="No space left"):
            await broken.done
        assert (await fine.done).status is State.SUCCEEDED
        return broken.execution_id, fine.execution_id

    broken_id, fine_id = asyncio.run(scenario())
    recorded = history(project)
    assert recorded[broken_id][0] == "crashed"
    assert "could not start: [Errno 28] No space left on device" in recorded[broken_id][1]
    assert recorded[fine_id][0] == "succeeded"
