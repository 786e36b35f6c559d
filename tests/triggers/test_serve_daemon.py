"""``workflow serve`` as one daemon for every trigger: webhooks, file changes and cron
schedules of the discovered workflows, through one queue, with alerts and secrets kept from
tasks. The real command as a subprocess; files and HTTP on 127.0.0.1 are real."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx

from jupyter_workflows.triggers.signature import sign
from tests.conftest import write_workflow
from tests.triggers.test_webhook_server import Daemon, history, wait_for

SECRET = "It's a Secret to Everybody"


def definitions(project: Path) -> Path:
    folder = project / "workflows" / "definitions"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def test_one_daemon_serves_webhooks_file_changes_and_cron(project: Path) -> None:
    folder = definitions(project)
    write_workflow(folder, {
        "name": "on-csv",
        "trigger": {"type": "file_change", "config": {"files": ["data/*.csv"], "debounce": 0.05}},
        "tasks": [{"id": "t", "type": "shell",
                   "command": 'echo "$FILE_EVENT $CHANGED_FILE_RELATIVE" >> seen.txt'}],
    }, "on-csv.json")  # fmt: skip
    write_workflow(folder, {
        "name": "deploy",
        "trigger": {"type": "webhook", "config": {"webhook": "/deploy", "secret_env": "HOOK_KEY"}},
        "tasks": [{"id": "t", "type": "shell",
                   "command": "env > task-env.txt; echo ${webhook.payload.ref}"}],
    }, "deploy.json")  # fmt: skip
    write_workflow(folder, {
        "name": "nightly",
        "trigger": {"type": "cron", "config": {"schedule": "30 2 * * *",
                                               "timezone": "Europe/Zurich"}},
        "tasks": [{"id": "t", "type": "shell", "command": "true"}],
    }, "nightly.json")  # fmt: skip
    write_workflow(folder, {
        "name": "bad-zone",
        "trigger": {"type": "cron", "config": {"schedule": "0 * * * *", "timezone": "Mars/Base"}},
        "tasks": [{"id": "t", "type": "shell", "command": "true"}],
    }, "bad-zone.json")  # fmt: skip
    (project / "data").mkdir()

    daemon = Daemon(project, env={"HOOK_KEY": SECRET})
    try:
        body = json.dumps({"ref": "refs/heads/main"}).encode()
        unsigned = httpx.post(daemon.url + "/deploy", content=body, timeout=10)
        assert unsigned.status_code == 401
        signed = httpx.post(
            daemon.url + "/deploy", content=body, timeout=10,
            headers={"X-Hub-Signature-256": sign(SECRET.encode(), body),
                     "Content-Type": "application/json"},
        )  # fmt: skip
        assert signed.status_code == 202, signed.text
        deploy_id = signed.json()["execution_id"]
        wait_for(lambda: (project / "task-env.txt").exists())

        # The watch is set up after the announcement; the data file is written once it is.
        read: list[str] = []
        wait_for(lambda: read.append(daemon.proc.stdout.readline()) or "watching" in read[-1])
        # The watcher scans before it watches: a file written in between is no event, so
        # write again (a change) until a run has seen it.
        deadline = time.monotonic() + 10
        rows = 0
        while not (project / "seen.txt").exists():
            assert time.monotonic() < deadline, "no run for data/a.csv"
            rows += 1
            (project / "data" / "a.csv").write_text("x,y\n" + "1,2\n" * rows)
            time.sleep(0.4)
    finally:
        code, out, err = daemon.stop()
    assert code == 0, err
    assert (project / "seen.txt").read_text().splitlines()[0] in (
        "add data/a.csv",
        "change data/a.csv",
    )
    task_env = (project / "task-env.txt").read_text()
    assert "WEBHOOK_PATH=/deploy" in task_env
    assert "HOOK_KEY" not in task_env and SECRET not in task_env  # the key stays with the server
    rows = {r["workflow"]: r for r in history(project)}
    assert rows["deploy"]["id"] == deploy_id and rows["deploy"]["status"] == "succeeded"
    assert rows["deploy"]["trigger"] == "webhook"
    assert rows["on-csv"]["trigger"] == "file_change" and rows["on-csv"]["status"] == "succeeded"
    assert "nightly" not in rows  # its slot is hours away
    everything = "".join(read) + out + err
    assert "cron nightly" in everything and "'30 2 * * *' in Europe/Zurich" in everything
    assert "bad-zone.json" in everything and "unknown time zone 'Mars/Base'" in everything


def test_a_failed_run_started_by_the_daemon_alerts(project: Path) -> None:
    folder = definitions(project)
    write_workflow(folder, {
        "name": "breaks",
        "trigger": {"type": "webhook", "config": {"webhook": "/breaks"}},
        "tasks": [{"id": "t", "type": "shell", "command": "echo nope; exit 9"}],
    }, "breaks.json")  # fmt: skip
    daemon = Daemon(project)
    try:
        answer = httpx.post(daemon.url + "/breaks", timeout=10)
        assert answer.status_code == 202
        alerts = project / "workflows" / ".executions" / "alerts.jsonl"
        wait_for(lambda: alerts.exists() and alerts.read_text().strip())
    finally:
        code, _, err = daemon.stop()
    assert code == 0
    (record,) = [json.loads(line) for line in alerts.read_text().splitlines()]
    assert (
        record["rule"] == "workflow_failed"
        and record["execution_id"] == answer.json()["execution_id"]
    )
    assert "ALERT [ERROR] workflow 'breaks' failed" in err


def test_each_delivery_runs_the_definition_as_it_is_then(project: Path) -> None:
    folder = definitions(project)
    hooked = {
        "name": "edited",
        "trigger": {"type": "webhook", "config": {"webhook": "/edit"}},
        "tasks": [{"id": "t", "type": "shell", "command": "echo first >> said.txt"}],
    }
    write_workflow(folder, hooked, "edited.json")
    daemon = Daemon(project)
    try:
        assert httpx.post(daemon.url + "/edit", timeout=10).status_code == 202
        wait_for(lambda: (project / "said.txt").exists())
        hooked["tasks"][0]["command"] = "echo second >> said.txt"  # type: ignore[index]
        write_workflow(folder, hooked, "edited.json")
        assert httpx.post(daemon.url + "/edit", timeout=10).status_code == 202
        wait_for(lambda: "second" in (project / "said.txt").read_text())
        (folder / "edited.json").write_text('{"name": "edited", "tasks": [}')
        broken = httpx.post(daemon.url + "/edit", timeout=10)
        assert broken.status_code == 500 and "cannot be loaded" in broken.json()["message"]
    finally:
        code, out, _ = daemon.stop()
    assert code == 0
    assert (project / "said.txt").read_text() == "first\nsecond\n"
    assert "/edit: cannot load" in out
