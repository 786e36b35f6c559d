"""Alert channel and webhook trigger credentials come from the secret sources too."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from werkzeug import Request, Response

from jupyter_workflows.cli.serve import _keep_secrets_from_tasks
from jupyter_workflows.secrets.credentials import credentials
from tests.conftest import cli, write_workflow


def secrets_file(project: Path, text: str, mode: int = 0o600) -> Path:
    path = project / "workflows" / "secrets.env"
    path.parent.mkdir(exist_ok=True)
    path.write_text(text)
    path.chmod(mode)
    return path


def test_credentials_fill_in_what_the_environment_leaves_unset(project):
    secrets_file(project, "SLACK_WEBHOOK_URL=https://hooks.example/from-file\nOTHER=x\n")
    env = {"ALERT_WEBHOOK_URL": "https://set/in/env", "WORKFLOW_SECRET_EMAIL_SMTP_PASSWORD": "pw-1"}
    got = credentials(
        project, ["SLACK_WEBHOOK_URL", "ALERT_WEBHOOK_URL", "EMAIL_SMTP_PASSWORD", "NONE"], env
    )
    assert got["SLACK_WEBHOOK_URL"] == "https://hooks.example/from-file"
    assert got["ALERT_WEBHOOK_URL"] == "https://set/in/env"  # the environment wins
    assert got["EMAIL_SMTP_PASSWORD"] == "pw-1"
    assert "NONE" not in got and "OTHER" not in got  # only the names asked for


def test_an_unusable_source_is_reported_not_raised(project):
    secrets_file(project, "SLACK_WEBHOOK_URL=https://x/y\n", mode=0o644)
    said: list[str] = []
    got = credentials(project, ["SLACK_WEBHOOK_URL"], {}, warn=said.append)
    assert "SLACK_WEBHOOK_URL" not in got
    assert "readable by its group and others" in said[0]


def test_a_failed_runs_alert_reaches_a_webhook_named_in_the_secrets_file(project, httpserver: Any):
    bodies: list[dict[str, Any]] = []

    def hook(request: Request) -> Response:
        bodies.append(json.loads(request.get_data()))
        return Response("", status=204)

    httpserver.expect_request("/hook/s3cr3t-path", method="POST").respond_with_handler(hook)
    secrets_file(project, f"ALERT_WEBHOOK_URL={httpserver.url_for('/hook/s3cr3t-path')}\n")
    (project / "workflows" / "config.json").write_text(
        json.dumps({"alerts": {"channels": ["webhook"]}})
    )
    write_workflow(project, {"name": "nightly", "tasks": [
        {"id": "a", "type": "shell", "command": "exit 3"}]})  # fmt: skip
    result = cli(project, "run", "wf.json", env={"ALERT_WEBHOOK_URL": ""})
    assert result.returncode == 1, result.stderr
    assert [(b["rule"], b["workflow"]) for b in bodies] == [("workflow_failed", "nightly")]


def test_a_webhook_triggers_signing_key_from_the_secrets_file(project, monkeypatch):
    secrets_file(project, "HOOK_KEY=signing-key-42\n")
    monkeypatch.setenv("ENV_KEY", "from-env-7")
    monkeypatch.setenv("WORKFLOW_SECRET_PREFIXED_KEY", "prefixed-9")
    hooks = {
        path: SimpleNamespace(secret_env=name)
        for path, name in [("/a", "HOOK_KEY"), ("/b", "ENV_KEY"), ("/c", "PREFIXED_KEY"),
                           ("/d", "MISSING_KEY"), ("/e", None)]
    }  # fmt: skip
    kept = _keep_secrets_from_tasks(hooks, project)  # type: ignore[arg-type]
    assert kept == {"HOOK_KEY": "signing-key-42", "ENV_KEY": "from-env-7",
                    "PREFIXED_KEY": "prefixed-9"}  # fmt: skip
    import os

    # Runs inherit the daemon's environment: the keys are no longer in it.
    assert "ENV_KEY" not in os.environ and "WORKFLOW_SECRET_PREFIXED_KEY" not in os.environ
