"""The alert outbox against real receivers on 127.0.0.1 and real processes killed mid-send."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from jupyter_workflows.monitor.alert import Alert
from jupyter_workflows.monitor.alerting import recent_alerts
from jupyter_workflows.monitor.channels import make_channel
from jupyter_workflows.monitor.outbox import deliver, enqueue, outbox_dir
from jupyter_workflows.monitor.rules import DeliveryConfig

SENDER = """
import sys
from jupyter_workflows.monitor.alert import Alert
from jupyter_workflows.monitor.channels import make_channel
from jupyter_workflows.monitor.outbox import deliver, enqueue
from jupyter_workflows.monitor.rules import DeliveryConfig

store = sys.argv[1]
alert = Alert(rule="workflow_failed", workflow="etl", title="etl failed", summary="boom",
              execution_id="run-1")
(item,) = enqueue(store, [(alert, ["webhook"])])
print("queued", flush=True)
deliver(store, make_channel, policy=DeliveryConfig(), deadline=60, first=[item])
"""


@pytest.fixture
def black_hole() -> Iterator[str]:
    """A URL whose server accepts connections and never answers."""
    with socket.socket() as hole:
        hole.bind(("127.0.0.1", 0))
        hole.listen(8)
        yield f"http://127.0.0.1:{hole.getsockname()[1]}/hook"


def items(store: Path) -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in sorted(outbox_dir(store).glob("*.json"))]


def test_a_sender_killed_mid_send_loses_nothing(
    tmp_path: Path, black_hole: str, httpserver: Any
) -> None:
    store = tmp_path / "store"
    env = {**os.environ, "ALERT_WEBHOOK_URL": black_hole}
    child = subprocess.Popen(
        [sys.executable, "-c", SENDER, str(store)], stdout=subprocess.PIPE, text=True, env=env
    )
    assert child.stdout is not None and child.stdout.readline().strip() == "queued"
    deadline = time.monotonic() + 10
    while not (items(store) and items(store)[0]["channels"][0]["attempts"] == 1):
        assert time.monotonic() < deadline
        time.sleep(0.02)
    time.sleep(0.2)  # inside the send, waiting for an answer that never comes
    os.kill(child.pid, signal.SIGKILL)
    child.wait()

    (item,) = items(store)  # still there, the attempt counted, the next one scheduled
    (channel,) = item["channels"]
    assert (channel["status"], channel["attempts"]) == ("pending", 1)
    assert channel["next_at"] > time.time() + 20  # the backoff holds for the next process
    assert "no answer before the sending process ended" in channel["error"]

    httpserver.expect_request("/hook", method="POST").respond_with_data("ok")
    back = {"ALERT_WEBHOOK_URL": httpserver.url_for("/hook")}
    policy = DeliveryConfig()
    deliver(store, lambda name: make_channel(name, back), policy=policy, deadline=5)
    assert httpserver.log == []  # not due yet
    deliver(store, lambda name: make_channel(name, back), policy=policy, deadline=5, force=True)
    ((request, _),) = httpserver.log
    assert request.get_json()["key"] == "workflow_failed:etl:run-1"
    assert items(store) == [] and not list(outbox_dir(store).glob("*.lock"))
    (record,) = recent_alerts(store)
    assert record["status"] == "sent" and record["channels"][0]["attempts"] == 2


def test_a_deadline_bounds_the_sender_and_each_alert_is_queued_once(
    tmp_path: Path, black_hole: str
) -> None:
    store = tmp_path / "store"
    alerts = [
        Alert(rule="workflow_failed", workflow=f"wf-{n}", title="t", summary="s", execution_id="x")
        for n in range(3)
    ]
    queued = enqueue(store, [(a, ["webhook"]) for a in alerts])
    assert len(queued) == 3
    assert enqueue(store, [(alerts[0], ["webhook"])]) == []  # the same key: not again
    started = time.monotonic()
    deliver(store, lambda name: make_channel(name, {"ALERT_WEBHOOK_URL": black_hole}),
            policy=DeliveryConfig(), deadline=0.5)  # fmt: skip
    assert time.monotonic() - started < 0.7
    assert [i["channels"][0]["attempts"] for i in items(store)] == [1, 1, 1]  # each tried once
    assert {r["status"] for r in recent_alerts(store)} == {"pending"}
