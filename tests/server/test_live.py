"""What a live run's subscribers are sent: the records ``Execution.apply`` folded, coalesced."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from jupyter_workflows.execution.events import (
    AttemptEnded,
    AttemptPlaced,
    AttemptStarted,
    Event,
    OutputLine,
    RunEnded,
    RunStarted,
    TaskEnded,
    TaskProgress,
    TaskStarted,
)
from jupyter_workflows.execution.records import Execution
from jupyter_workflows.server.live import RunBroadcaster, Subscriber

RUN = "run-1"
WORKER = "tcp://10.0.0.7:40123"


def a_run() -> list[Event]:
    """A parallel task with two children (one with a result and outputs, run on a worker of a
    cluster) and a notebook-like task whose second cell fails, as the engine would emit them."""
    t = 1000.0
    child = {"execution_id": RUN, "parent": "fan", "type": "shell"}
    return [
        RunStarted(execution_id=RUN, workflow="w", at=t, tasks=[
            {"id": "fan", "type": "parallel", "depends_on": []},
            {"id": "nb", "name": "Report", "type": "notebook", "depends_on": ["fan"]},
        ]),
        TaskStarted(execution_id=RUN, task_id="fan", type="parallel", at=t + 1),
        AttemptStarted(execution_id=RUN, task_id="fan", attempt=1, at=t + 1),
        TaskStarted(task_id="fan.0", at=t + 2, **child),
        TaskStarted(task_id="fan.1", at=t + 2, **child),
        AttemptStarted(execution_id=RUN, task_id="fan.0", attempt=1, at=t + 2),
        AttemptPlaced(execution_id=RUN, task_id="fan.0", attempt=1, executor="dask",
                      worker=WORKER, host="node-7", at=t + 2),
        AttemptStarted(execution_id=RUN, task_id="fan.1", attempt=1, at=t + 2),
        OutputLine(execution_id=RUN, task_id="fan.0", attempt=1, stream="stdout", line="a"),
        OutputLine(execution_id=RUN, task_id="fan.1", attempt=1, stream="stderr", line="b"),
        AttemptEnded(execution_id=RUN, task_id="fan.0", attempt=1, status="succeeded",
                     started_at=t + 2, exit_code=0, at=t + 3),
        TaskEnded(execution_id=RUN, task_id="fan.0", status="succeeded", started_at=t + 2,
                  exit_code=0, result={"rows": 3}, outputs={"k": "v"}, attempts=1,
                  type="shell", parent="fan", at=t + 3),
        AttemptEnded(execution_id=RUN, task_id="fan.1", attempt=1, status="succeeded",
                     started_at=t + 2, exit_code=0, at=t + 3),
        TaskEnded(execution_id=RUN, task_id="fan.1", status="succeeded", started_at=t + 2,
                  exit_code=0, result="b", attempts=1, type="shell", parent="fan", at=t + 3),
        AttemptEnded(execution_id=RUN, task_id="fan", attempt=1, status="succeeded",
                     started_at=t + 1, at=t + 4),
        TaskEnded(execution_id=RUN, task_id="fan", status="succeeded", started_at=t + 1,
                  result={"fan.0": {"rows": 3}, "fan.1": "b"}, attempts=1, type="parallel",
                  at=t + 4),
        TaskStarted(execution_id=RUN, task_id="nb", name="Report", type="notebook", at=t + 5),
        AttemptStarted(execution_id=RUN, task_id="nb", attempt=1, at=t + 5),
        TaskProgress(execution_id=RUN, task_id="nb", attempt=1, step=1, total=2,
                     label="cell 1/2", status="running"),
        OutputLine(execution_id=RUN, task_id="nb", attempt=1, stream="stdout", line="c1"),
        TaskProgress(execution_id=RUN, task_id="nb", attempt=1, step=1, total=2,
                     label="cell 1/2", status="succeeded"),
        TaskProgress(execution_id=RUN, task_id="nb", attempt=1, step=2, total=2,
                     label="cell 2/2", status="running"),
        TaskProgress(execution_id=RUN, task_id="nb", attempt=1, step=2, total=2,
                     label="cell 2/2", status="failed"),
        AttemptEnded(execution_id=RUN, task_id="nb", attempt=1, status="failed",
                     started_at=t + 5, exit_code=1, error="cell 2/2 raised", at=t + 6),
        TaskEnded(execution_id=RUN, task_id="nb", status="failed", started_at=t + 5,
                  exit_code=1, error="cell 2/2 raised", attempts=1, name="Report",
                  type="notebook", at=t + 6),
        RunEnded(execution_id=RUN, status="failed", error="task nb failed", at=t + 7),
    ]  # fmt: skip


def folded(events: list[Event]) -> Execution:
    """The events folded on their own, as the engine and the store fold them."""
    execution = Execution(id=RUN, workflow="w")
    for event in events:
        execution.apply(event)
    return execution


class Client:
    """What a panel does with the stream: replace records, collect lines, nothing more."""

    def __init__(self, snapshot: dict[str, Any]):
        self.run = {k: v for k, v in snapshot.items() if k != "tasks"}
        self.tasks = {task["id"]: task for task in snapshot["tasks"]}
        self.lines = [line for task in snapshot["tasks"] for line in task["log_tail"]]
        self.batches: list[list[tuple[str, Any]]] = []

    def receive(self, batch: list[tuple[str, Any]]) -> None:
        self.batches.append(batch)
        for kind, data in batch:
            if kind == "tasks":
                ids = [task["id"] for task in data]
                assert len(ids) == len(set(ids)), f"a task twice in one message: {ids}"
                self.tasks.update(zip(ids, data, strict=True))
            elif kind == "run":
                self.run = data
            else:
                assert kind == "output", kind
                self.lines.append(data["line"])


def replay(events: list[Event], *, subscribe_at: int, flush_every: int, root: Path) -> Client:
    async def scenario() -> Client:
        broadcaster = RunBroadcaster(RUN, "w", root=root)
        client: Client | None = None
        subscriber: Subscriber | None = None
        for n, event in enumerate(events):
            if n == subscribe_at:
                snapshot, subscriber = broadcaster.subscribe()
                client = Client(snapshot)
            broadcaster(event)
            if subscriber is not None and (n + 1) % flush_every == 0:
                client.receive(await subscriber.next_batch(0))  # type: ignore[union-attr]
        assert client is not None and subscriber is not None
        client.receive(await subscriber.next_batch(0))
        assert broadcaster.ended and not broadcaster._subscribers
        assert broadcaster.subscribe()[1] is None  # after the end: the snapshot alone
        return client

    return asyncio.run(scenario())


@pytest.mark.parametrize("flush_every", [1, 3, 1000])
@pytest.mark.parametrize("subscribe_at", [0, 8, 18])
def test_records_received_are_what_execution_apply_folded(
    tmp_path: Path, subscribe_at: int, flush_every: int
) -> None:
    events = a_run()
    client = replay(events, subscribe_at=subscribe_at, flush_every=flush_every, root=tmp_path)
    expected = folded(events)

    expected_tasks = expected.to_dict()["tasks"]
    # Each record as folded, with its log tail and where it ran (when not here, locally).
    assert [client.tasks[t["id"]] for t in expected_tasks] == [
        {
            **t,
            "log_tail": expected.tasks[t["id"]].log_tail,
            "where": WORKER if t["id"] == "fan.0" else None,
        }
        for t in expected_tasks
    ]
    fan0, nb = client.tasks["fan.0"], client.tasks["nb"]
    assert fan0["attempts"][0]["worker"] == WORKER
    assert (fan0["parent"], fan0["result"], fan0["outputs"]) == ("fan", {"rows": 3}, {"k": "v"})
    assert nb["progress"] == {"step": 2, "total": 2, "label": "cell 2/2", "status": "failed"}
    run = {k: v for k, v in expected.to_dict().items() if k != "tasks"}
    assert client.run == {**run, "output_notebooks": []}
    # Every line once, in order, whenever the client came in.
    assert client.lines == [e.line for e in events if isinstance(e, OutputLine)]
    # The end of the run is the last message of all.
    messages = [message for batch in client.batches for message in batch]
    ends = [n for n, (kind, data) in enumerate(messages) if kind == "run" and data["ended_at"]]
    assert ends == [len(messages) - 1]


def test_changes_between_flushes_are_sent_once_per_task(tmp_path: Path) -> None:
    client = replay(a_run(), subscribe_at=0, flush_every=1000, root=tmp_path)
    (batch,) = [b for b in client.batches if b]
    assert [kind for kind, _ in batch] == ["output"] * 3 + ["tasks", "run"]
    tasks = batch[3][1]
    assert [task["id"] for task in tasks] == ["fan", "nb", "fan.0", "fan.1"]


def test_a_line_alone_does_not_resend_its_task(tmp_path: Path) -> None:
    events = a_run()
    first = next(n for n, e in enumerate(events) if isinstance(e, OutputLine))  # fan.0's

    async def scenario() -> list[tuple[str, Any]]:
        broadcaster = RunBroadcaster(RUN, "w", root=tmp_path)
        for event in events[:first]:
            broadcaster(event)
        _, subscriber = broadcaster.subscribe()
        assert subscriber is not None
        broadcaster(events[first])  # an output line of fan.0
        return await subscriber.next_batch(0)

    assert asyncio.run(scenario()) == [
        ("output", {"task_id": "fan.0", "attempt": 1, "stream": "stdout", "line": "a",
                    "at": events[first].at}),
    ]  # fmt: skip


def test_a_client_too_far_behind_is_cut_off(tmp_path: Path) -> None:
    async def scenario() -> tuple[Subscriber, list[tuple[str, Any]]]:
        execution = Execution(id=RUN, workflow="w")
        subscriber = Subscriber(execution, tmp_path, limit=3)
        for n in range(4):
            line = OutputLine(execution_id=RUN, task_id="t", attempt=1, stream="out", line=f"{n}")
            execution.apply(line)
            subscriber.changed(line)
        return subscriber, await subscriber.next_batch(10)

    subscriber, batch = asyncio.run(scenario())
    assert subscriber.overflowed
    assert batch == []  # at once, and nothing: the stream ends, the client starts again


def test_a_quiet_subscriber_times_out_empty(tmp_path: Path) -> None:
    async def scenario() -> list[tuple[str, Any]]:
        _, subscriber = RunBroadcaster(RUN, "w", root=tmp_path).subscribe()
        assert subscriber is not None
        return await subscriber.next_batch(0.01)

    assert asyncio.run(scenario()) == []
