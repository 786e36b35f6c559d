"""``${webhook...}`` in a run: the body a webhook delivered (WEBHOOK_PAYLOAD) reaches templates."""

from __future__ import annotations

from jupyter_workflows.execution.states import State
from tests.conftest import make_workflow

ECHO = {
    "id": "a",
    "type": "shell",
    "command": "echo ${webhook.payload.ref} ${webhook.payload.commits.0.id} ${webhook.path}",
}


def test_a_json_payload_is_reachable_by_path(run_workflow) -> None:
    env = {"WEBHOOK_PAYLOAD": '{"ref": "refs/heads/main", "commits": [{"id": "c0ffee"}]}',
           "WEBHOOK_PATH": "/webhook/deploy"}  # fmt: skip
    execution = run_workflow(make_workflow(ECHO), env=env)
    assert execution.tasks["a"].result == "refs/heads/main c0ffee /webhook/deploy"


def test_a_text_payload_is_the_payload_itself(run_workflow) -> None:
    task = {"id": "a", "type": "shell", "command": "echo ${webhook.payload}"}
    execution = run_workflow(make_workflow(task), env={"WEBHOOK_PAYLOAD": "hello; rm -rf /"})
    assert execution.tasks["a"].result == "hello; rm -rf /"  # one literal word, never shell syntax


def test_without_a_webhook_the_task_fails_saying_why(run_workflow) -> None:
    execution = run_workflow(make_workflow(ECHO), env={})
    assert execution.status is State.FAILED
    assert "not triggered by one" in (execution.tasks["a"].error or "")
