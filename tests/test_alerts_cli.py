"""``workflow alerts test`` through click's CliRunner, against real receivers on 127.0.0.1."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from jupyter_workflows.cli.alerts import alerts

HOOK = "/hook/SECRET-path-777"
NO_CHANNELS = {"SLACK_WEBHOOK_URL": None, "ALERT_WEBHOOK_URL": None, "SENDGRID_API_KEY": None,
               "EMAIL_SMTP_HOST": None, "EMAIL_FROM": None, "EMAIL_TO": None}  # fmt: skip


def invoke(root: Path, *args: str, env: dict[str, Any] | None = None) -> Any:
    return CliRunner().invoke(alerts, ["test", *args], obj=root, env={**NO_CHANNELS, **(env or {})})


def write_config(root: Path, config: dict[str, Any]) -> None:
    (root / "workflows").mkdir(exist_ok=True)
    (root / "workflows" / "config.json").write_text(json.dumps(config))


def test_default_is_the_console(tmp_path: Path) -> None:
    result = invoke(tmp_path)
    assert result.exit_code == 0, result.output
    assert result.stdout == "console: ok\n"
    assert "ALERT [INFO] Test alert from jupyter-workflows" in result.stderr
    assert "Rule:         test" in result.stderr


def test_channels_come_from_the_project_config(tmp_path: Path, httpserver: Any) -> None:
    write_config(tmp_path, {"alerts": {"channels": ["webhook"]}})
    httpserver.expect_oneshot_request(HOOK, method="POST").respond_with_data("ok")
    result = invoke(tmp_path, env={"ALERT_WEBHOOK_URL": httpserver.url_for(HOOK)})
    assert result.exit_code == 0, result.output
    assert result.stdout == "webhook: ok\n"
    ((request, _),) = httpserver.log
    body = request.get_json()
    assert (body["rule"], body["severity"], body["key"]) == ("test", "info", "test:(test):None")


def test_failures_are_reported_per_channel_and_exit_1(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once the block ends: nothing listens there
    url = f"http://127.0.0.1:{port}{HOOK}"
    result = invoke(tmp_path, "--channel", "slack", "--channel", "webhook", "--channel", "console",
                    "--attempts", "1", env={"ALERT_WEBHOOK_URL": url})  # fmt: skip
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        "slack: failed: slack needs SLACK_WEBHOOK_URL",
        f"webhook: failed after 1 attempt(s): webhook: cannot reach http://127.0.0.1:{port}/***: "
        "[Errno 111] Connection refused",
        "console: ok",
    ]
    assert "SECRET-path" not in result.output


def test_unknown_channel_is_named(tmp_path: Path) -> None:
    result = invoke(tmp_path, "--channel", "pager")
    assert result.exit_code == 1
    assert "pager: failed: unknown alert channel 'pager': expected one of" in result.stdout


def test_a_bad_config_is_one_clear_line(tmp_path: Path) -> None:
    write_config(tmp_path, {"alerts": []})
    result = invoke(tmp_path)
    assert result.exit_code == 2
    assert result.stderr.startswith("error: ") and "'alerts' must be an object" in result.stderr
