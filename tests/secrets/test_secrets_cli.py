"""``workflow secrets list|check`` and a missing secret stopping a run before any task."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from jupyter_workflows.definition.model import Workflow
from jupyter_workflows.secrets import needed_secrets
from tests.conftest import cli, write_workflow

SECRET = "t0ken-Value-42"
HASH_TASK = {
    "id": "use",
    "type": "shell",
    # The task proves it got the real value without printing it: its sha256, to a file.
    "command": 'printf %s "$TOKEN" | sha256sum | cut -c1-64 > got.txt',
    "environment": {"TOKEN": "${secret.API_TOKEN}"},
}


def workflow(root: Path, *tasks: dict, **fields) -> Path:
    return write_workflow(root, {"name": "secretive", "tasks": list(tasks), **fields})


def test_needed_secrets_names_each_place():
    wf = Workflow.model_validate(
        {
            "name": "w",
            "secrets": ["PLAIN"],
            "tasks": [
                HASH_TASK,
                {
                    "id": "call",
                    "type": "http",
                    "url": "https://example.org/${secret.API_TOKEN}",
                    "headers": {"Authorization": "Bearer ${secret.OTHER}"},
                },
            ],
        }
    )
    assert needed_secrets(wf) == {
        "API_TOKEN": ["task 'use', field 'environment.TOKEN'", "task 'call', field 'url'"],
        "OTHER": ["task 'call', field 'headers.Authorization'"],
        "PLAIN": ["secrets"],
    }


def test_check_says_what_is_missing_and_where_it_was_looked_for(project):
    path = workflow(project, HASH_TASK, secrets=["PLAIN"])
    result = cli(project, "secrets", "check", str(path), env={"PLAIN": "plain-value"})
    assert result.returncode == 1, result.stderr
    assert "needs 2 secret(s), 1 missing" in result.stdout
    assert "API_TOKEN: MISSING (needed by task 'use', field 'environment.TOKEN')" in result.stdout
    assert "looked in: $WORKFLOW_SECRET_API_TOKEN, workflows/secrets.env (no such file)" in (
        result.stdout
    )
    assert "PLAIN: $PLAIN (needed by secrets)" in result.stdout
    assert "plain-value" not in result.stdout + result.stderr

    found = cli(project, "secrets", "check", str(path), "--json",
                env={"PLAIN": "plain-value", "WORKFLOW_SECRET_API_TOKEN": SECRET})  # fmt: skip
    assert found.returncode == 0, found.stderr
    rows = {row["name"]: row for row in json.loads(found.stdout)}
    assert rows["API_TOKEN"]["where"] == "$WORKFLOW_SECRET_API_TOKEN"
    assert SECRET not in found.stdout


def test_check_refuses_a_secrets_file_others_can_read(project):
    path = workflow(project, HASH_TASK)
    secrets_file = project / "workflows" / "secrets.env"
    secrets_file.parent.mkdir()
    secrets_file.write_text(f"API_TOKEN={SECRET}\n")
    secrets_file.chmod(0o644)
    result = cli(project, "secrets", "check", str(path))
    assert result.returncode == 2
    assert "readable by its group and others (mode 0644): refused" in result.stderr
    assert "chmod 600" in result.stderr and SECRET not in result.stderr
    secrets_file.chmod(0o600)
    result = cli(project, "secrets", "check", str(path))
    assert result.returncode == 0, result.stderr
    assert "API_TOKEN: workflows/secrets.env" in result.stdout


def test_check_warns_of_a_value_too_short_to_mask(project):
    path = workflow(project, HASH_TASK)
    result = cli(project, "secrets", "check", str(path), env={"WORKFLOW_SECRET_API_TOKEN": "abc"})
    assert result.returncode == 0
    assert "shorter than 4 characters: it will not be masked" in result.stdout


def test_list_shows_names_and_sources_never_values(project):
    secrets_file = project / "workflows" / "secrets.env"
    secrets_file.parent.mkdir()
    secrets_file.write_text("FROM_FILE=file-value-1\n")
    secrets_file.chmod(0o600)
    path = workflow(project, HASH_TASK)
    result = cli(project, "secrets", "list", str(path),
                 env={"WORKFLOW_SECRET_API_TOKEN": SECRET})  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "API_TOKEN\tenv: $WORKFLOW_SECRET_API_TOKEN" in result.stdout
    assert "FROM_FILE\tfile: workflows/secrets.env" in result.stdout
    assert SECRET not in result.stdout and "file-value-1" not in result.stdout


def test_a_missing_secret_stops_the_run_before_any_task(project):
    first = {"id": "first", "type": "shell", "command": "touch ran.txt"}
    path = workflow(project, first, {**HASH_TASK, "depends_on": ["first"]})
    result = cli(project, "run", str(path))
    assert result.returncode == 2
    assert "1 secret(s) this workflow needs cannot be found" in result.stderr
    assert "API_TOKEN: needed by task 'use', field 'environment.TOKEN'" in result.stderr
    assert "Set WORKFLOW_SECRET_API_TOKEN" in result.stderr
    assert not (project / "ran.txt").exists()  # no task started
    assert not list((project / "workflows" / ".executions").glob("journals/**/*.jsonl"))


def test_the_task_gets_the_value_and_the_record_does_not(project):
    show = {"id": "show", "type": "shell", "command": "echo \"token is $TOKEN\"",
            "environment": {"TOKEN": "${secret.API_TOKEN}"}}  # fmt: skip
    path = workflow(project, HASH_TASK, show)
    result = cli(project, "run", str(path), "--json", env={"WORKFLOW_SECRET_API_TOKEN": SECRET})
    assert result.returncode == 0, result.stderr
    got = (project / "got.txt").read_text().strip()
    assert got == hashlib.sha256(SECRET.encode()).hexdigest()
    assert SECRET not in result.stdout + result.stderr
    assert json.loads(result.stdout)["tasks"][1]["result"] == "token is ***"


def test_a_value_too_short_to_mask_is_warned_about(project):
    path = workflow(project, HASH_TASK)
    result = cli(project, "run", str(path), env={"WORKFLOW_SECRET_API_TOKEN": "abc"})
    assert result.returncode == 0, result.stderr
    assert "secret 'API_TOKEN' is shorter than 4 characters: it is not masked" in result.stderr


def test_a_dry_run_masks_declared_secret_variables(project):
    call = {"id": "call", "type": "http", "url": "https://api.example/${env.PLAIN_TOKEN}/x"}
    path = workflow(project, call, HASH_TASK, secrets=["PLAIN_TOKEN"])
    result = cli(project, "run", str(path), "--dry-run", env={"PLAIN_TOKEN": "plain-token-77"})
    assert result.returncode == 0, result.stderr
    assert 'url: "https://api.example/***/x"' in result.stdout
    assert "plain-token-77" not in result.stdout


def test_environment_variables_the_workflow_declares_secret_are_masked(project):
    echo = {"id": "echo", "type": "shell", "command": 'echo "$PLAIN_TOKEN and ${env.PLAIN_TOKEN}"'}
    path = workflow(project, echo, secrets=["PLAIN_TOKEN"])
    # Both the secret (from WORKFLOW_SECRET_...) and the plain variable's own value are masked.
    env = {"PLAIN_TOKEN": "plain-value-1", "WORKFLOW_SECRET_PLAIN_TOKEN": "prefixed-value-2"}
    result = cli(project, "run", str(path), "--json", env=env)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["tasks"][0]["result"] == "*** and ***"
    assert "plain-value-1" not in result.stdout + result.stderr
