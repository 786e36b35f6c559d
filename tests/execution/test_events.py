"""Events survive their journal form: what the store reads back is what the engine emitted."""

from __future__ import annotations

import json

import pytest

from jupyter_workflows.execution.events import (
    EVENT_TYPES,
    AttemptEnded,
    AttemptPlaced,
    OutputLine,
    ProcessStarted,
    RunEnded,
    RunStarted,
    TaskEnded,
    event_from_dict,
)

SAMPLES = [
    RunStarted(
        execution_id="e1", workflow="w", tasks=[{"id": "a", "depends_on": []}], pid=3, run_tag="t"
    ),
    RunStarted(execution_id="e2", workflow="w", executor="dask", cluster="tcp://s:8786"),
    AttemptPlaced(
        execution_id="e1", task_id="a", attempt=1, executor="dask", worker="tcp://w:1", host="n"
    ),
    OutputLine(execution_id="e1", task_id="a", attempt=1, stream="stdout", line="hi"),
    AttemptEnded(
        execution_id="e1", task_id="a", attempt=1, status="failed", started_at=1.0, retry_in=2.0
    ),
    TaskEnded(
        execution_id="e1", task_id="a", status="succeeded", result={"x": [1]}, outputs={"k": "v"}
    ),
    ProcessStarted(execution_id="e1", task_id="a", attempt=1, pid=42, pid_start="123"),
    RunEnded(execution_id="e1", status="crashed", end_estimated=True),
]


@pytest.mark.parametrize("event", SAMPLES, ids=lambda e: e.kind)
def test_round_trip_through_json(event):
    data = json.loads(json.dumps({**event.to_dict(), "seq": 7}))
    assert data["kind"] == event.kind
    assert event_from_dict(data) == event


def test_every_kind_is_registered_once():
    assert set(EVENT_TYPES) == {
        "run_started", "task_started", "attempt_started", "attempt_placed", "output",
        "task_progress", "attempt_ended", "task_ended", "run_ended", "process_started",
    }  # fmt: skip
