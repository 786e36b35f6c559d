"""Alert channels against real receivers on 127.0.0.1: an HTTP server and an SMTP server."""

from __future__ import annotations

import email
import email.policy
import json
import logging
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from werkzeug import Response

from jupyter_workflows.monitor.alert import Alert, ChannelError
from jupyter_workflows.monitor.channel_email import SendGridChannel, SmtpChannel
from jupyter_workflows.monitor.channels import (
    ConsoleChannel,
    SlackChannel,
    WebhookChannel,
    deliver,
    make_channel,
    make_channels,
    redact_url,
)

SLACK_PATH = "/services/T0001/B0002/hookSECRETxyz123"
API_KEY = "SG.sendgrid-SECRET-key-4242"
PASSWORD = "smtp-SECRET-pass-9876"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def alert() -> Alert:
    return Alert(
        rule="workflow_failed",
        workflow="nightly-etl",
        title="nightly-etl failed at task 'load'",
        summary="Run abc123 failed: task 'load' exited with code 3 after 2 attempts.",
        execution_id="abc123",
        failing_task="load",
        log_tail=["connecting to warehouse", "ERROR: table <sales> is locked & busy"],
        figures={"exit_code": 3, "duration_s": 12.345678},
        at=1_700_000_000.0,
    )


# -- Alert -------------------------------------------------------------------------------------


def test_alert_key_text_and_dict(alert: Alert) -> None:
    assert alert.key() == "workflow_failed:nightly-etl:abc123"
    text = alert.text()
    assert text.startswith("[ERROR] nightly-etl failed at task 'load'\n")
    for part in ("Run abc123 failed", "Failing task: load", "duration_s: 12.3", "exit_code: 3",
                 "  ERROR: table <sales> is locked & busy"):  # fmt: skip
        assert part in text
    data = alert.to_dict()
    assert data["key"] == alert.key()
    assert data["log_tail"] == alert.log_tail and data["figures"] == alert.figures
    json.dumps(data)  # JSON-ready


def test_console_prints_a_block_on_stderr(alert: Alert, capsys: pytest.CaptureFixture[str]) -> None:
    make_channel("console", {}).send(alert)
    err = capsys.readouterr().err
    assert err.startswith("=" * 72 + "\nALERT [ERROR] nightly-etl failed at task 'load'")
    assert "Failing task: load" in err and "ERROR: table <sales> is locked & busy" in err


# -- configuration -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "env", "message"),
    [
        ("slack", {}, "slack needs SLACK_WEBHOOK_URL"),
        ("webhook", {}, "webhook needs ALERT_WEBHOOK_URL"),
        ("email", {}, "email needs EMAIL_FROM and EMAIL_TO"),
        (
            "email",
            {"EMAIL_FROM": "a@x", "EMAIL_TO": "b@x"},
            "email needs EMAIL_SMTP_HOST (or SENDGRID_API_KEY)",
        ),
        (
            "email",
            {"EMAIL_FROM": "a@x", "EMAIL_TO": " , "},
            "email needs EMAIL_TO (comma-separated addresses)",
        ),
        (
            "email",
            {
                "EMAIL_FROM": "a@x",
                "EMAIL_TO": "b@x",
                "EMAIL_SMTP_HOST": "h",
                "EMAIL_SMTP_PORT": "smtp",
            },
            "email: EMAIL_SMTP_PORT must be a port number, got 'smtp'",
        ),
        (
            "pager",
            {},
            "unknown alert channel 'pager': expected one of console, email, slack, webhook",
        ),
    ],
)
def test_missing_configuration_is_named(name: str, env: dict[str, str], message: str) -> None:
    with pytest.raises(ChannelError) as info:
        make_channel(name, env)
    assert str(info.value) == message


def test_make_channels_picks_the_right_kinds_and_lists_every_problem() -> None:
    env = {"SLACK_WEBHOOK_URL": "http://127.0.0.1:1/x", "SLACK_CHANNEL": "#ops",
           "EMAIL_FROM": "a@x", "EMAIL_TO": "b@x, c@x", "EMAIL_SMTP_HOST": "mail"}  # fmt: skip
    channels = make_channels(["console", "slack", "email", "console"], env)
    assert [type(c) for c in channels] == [ConsoleChannel, SlackChannel, SmtpChannel]
    assert channels[1].channel == "#ops"  # type: ignore[attr-defined]
    smtp = channels[2]
    assert (smtp.port, smtp.recipients) == (587, ["b@x", "c@x"])  # type: ignore[attr-defined]
    sendgrid = make_channel("email", {**env, "SENDGRID_API_KEY": API_KEY})
    assert isinstance(sendgrid, SendGridChannel) and API_KEY not in repr(sendgrid)
    with pytest.raises(ChannelError, match="slack needs .*; webhook needs ALERT_WEBHOOK_URL"):
        make_channels(["slack", "webhook"], {})


def test_redact_url_keeps_host_and_hides_path() -> None:
    assert redact_url(f"https://hooks.slack.com{SLACK_PATH}") == "https://hooks.slack.com/***"
    assert redact_url("http://127.0.0.1:8080/x?token=1") == "http://127.0.0.1:8080/***"
    assert redact_url("http://127.0.0.1:8080") == "http://127.0.0.1:8080"


# -- HTTP channels -----------------------------------------------------------------------------


def test_slack_posts_a_block_kit_message(httpserver: Any, alert: Alert) -> None:
    expected = {
        "text": "[error] nightly-etl failed at task 'load'",
        "channel": "#alerts",
        "blocks": [
            {
                "type": "header",
                "text": {"type": "plain_text", "text": "nightly-etl failed at task 'load'"},
            },
            {
                "type": "section",
                "text": {
                    "type": "mrkdwn",
                    "text": "Run abc123 failed: task 'load' exited with code 3 after 2 attempts.",
                },
            },
            {
                "type": "section",
                "fields": [
                    {"type": "mrkdwn", "text": "*Workflow*\nnightly-etl"},
                    {"type": "mrkdwn", "text": "*Execution*\nabc123"},
                    {"type": "mrkdwn", "text": "*Rule*\nworkflow_failed"},
                    {"type": "mrkdwn", "text": "*Failing task*\nload"},
                ],
            },
            {
                "type": "context",
                "elements": [{"type": "mrkdwn", "text": "exit_code: 3 · duration_s: 12.3"}],
            },
            {
                "type": "section",
                "text": {
                    "type": "mrkdwn",
                    "text": "*Last log lines*\n```\nconnecting to warehouse\n"
                    "ERROR: table &lt;sales&gt; is locked &amp; busy\n```",
                },
            },
        ],
    }
    httpserver.expect_oneshot_request(SLACK_PATH, method="POST", json=expected).respond_with_data(
        "ok"
    )
    env = {"SLACK_WEBHOOK_URL": httpserver.url_for(SLACK_PATH), "SLACK_CHANNEL": "#alerts"}
    make_channel("slack", env).send(alert)
    httpserver.check_assertions()
    ((request, _),) = httpserver.log
    assert request.headers["Content-Type"] == "application/json"


def test_slack_error_names_status_but_not_the_secret_path(httpserver: Any, alert: Alert) -> None:
    httpserver.expect_request(SLACK_PATH).respond_with_data("invalid_token", status=403)
    url = httpserver.url_for(SLACK_PATH)
    with pytest.raises(ChannelError) as info:
        SlackChannel(url).send(alert)
    where = httpserver.url_for("/").rstrip("/")
    assert str(info.value) == f"slack: {where}/*** answered HTTP 403: invalid_token"


def test_slack_keeps_the_last_log_lines_within_slacks_limit(httpserver: Any, alert: Alert) -> None:
    alert.log_tail = [f"line {i} " + "x" * 90 for i in range(100)]
    httpserver.expect_request(SLACK_PATH).respond_with_data("ok")
    SlackChannel(httpserver.url_for(SLACK_PATH)).send(alert)
    ((request, _),) = httpserver.log
    logs = request.get_json()["blocks"][-1]["text"]["text"]
    assert len(logs) <= 3000 and "line 99 " in logs and "line 0 " not in logs


def test_webhook_posts_the_alert_as_json(httpserver: Any, alert: Alert) -> None:
    expected = {
        "rule": "workflow_failed", "workflow": "nightly-etl",
        "title": "nightly-etl failed at task 'load'",
        "summary": "Run abc123 failed: task 'load' exited with code 3 after 2 attempts.",
        "execution_id": "abc123", "failing_task": "load",
        "log_tail": ["connecting to warehouse", "ERROR: table <sales> is locked & busy"],
        "figures": {"exit_code": 3, "duration_s": 12.345678},
        "severity": "error", "at": 1_700_000_000.0, "key": "workflow_failed:nightly-etl:abc123",
        "state": "firing", "reminder": False,
    }  # fmt: skip
    httpserver.expect_oneshot_request("/hook", method="POST", json=expected).respond_with_data(
        "", status=204
    )
    make_channel("webhook", {"ALERT_WEBHOOK_URL": httpserver.url_for("/hook")}).send(alert)
    httpserver.check_assertions()


def test_a_send_under_a_time_limit_ends_by_it_however_long_the_client_takes_to_build(
    alert: Alert, monkeypatch: pytest.MonkeyPatch
) -> None:
    import httpx

    from jupyter_workflows.monitor.channels import time_limit

    # A receiver that accepts and never answers; and a client that takes 0.5 s to build, as
    # loading the CA bundle can on a busy machine (the real constructor runs after the wait).
    hole = socket.socket()
    hole.bind(("127.0.0.1", 0))
    hole.listen(4)
    build = httpx.Client.__init__

    def slow_build(self: Any, *args: Any, **kwargs: Any) -> None:
        time.sleep(0.5)
        build(self, *args, **kwargs)

    monkeypatch.setattr(httpx.Client, "__init__", slow_build)
    channel = make_channel(
        "webhook", {"ALERT_WEBHOOK_URL": f"http://127.0.0.1:{hole.getsockname()[1]}/h"}
    )
    started = time.monotonic()
    try:
        with time_limit(started + 0.6), pytest.raises(ChannelError, match="timed out"):
            channel.send(alert)
    finally:
        hole.close()
    assert time.monotonic() - started < 0.85  # 1.1 s and more when the timeout came first


def test_sendgrid_posts_v3_mail_send_with_bearer_key(httpserver: Any, alert: Alert) -> None:
    env = {
        "SENDGRID_API_KEY": API_KEY,
        "SENDGRID_BASE_URL": httpserver.url_for("/"),
        "EMAIL_FROM": "alerts@example.org",
        "EMAIL_TO": "ops@example.org,dev@example.org",
    }
    httpserver.expect_oneshot_request(
        "/v3/mail/send", method="POST", headers={"Authorization": f"Bearer {API_KEY}"}
    ).respond_with_data("", status=202)
    make_channel("email", env).send(alert)
    httpserver.check_assertions()
    ((request, _),) = httpserver.log
    body = request.get_json()
    assert body["personalizations"] == [
        {"to": [{"email": "ops@example.org"}, {"email": "dev@example.org"}]}
    ]
    assert body["from"] == {"email": "alerts@example.org"}
    assert body["subject"] == "[error] nightly-etl failed at task 'load'"
    assert [c["type"] for c in body["content"]] == ["text/plain", "text/html"]
    assert body["content"][0]["value"] == alert.text()
    html = body["content"][1]["value"]
    assert "<td>load</td>" in html and "table &lt;sales&gt; is locked &amp; busy" in html


def test_sendgrid_refusal_never_shows_the_key(httpserver: Any, alert: Alert) -> None:
    # A server that echoes the key back must not get it into our message either.
    httpserver.expect_request("/v3/mail/send").respond_with_data(f"bad key {API_KEY}", status=401)
    channel = SendGridChannel(API_KEY, "a@x", ["b@x"], base_url=httpserver.url_for("/"))
    with pytest.raises(ChannelError) as info:
        channel.send(alert)
    assert "answered HTTP 401: bad key ***" in str(info.value)
    assert API_KEY not in str(info.value)


# -- SMTP --------------------------------------------------------------------------------------


class Inbox:
    """An aiosmtpd handler that keeps every message it receives."""

    def __init__(self) -> None:
        self.messages: list[Any] = []
        self.envelopes: list[Any] = []
        self.sessions: list[tuple[bool, bool]] = []  # (over TLS, authenticated)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.envelopes.append(envelope)
        self.sessions.append((session.ssl is not None, bool(session.authenticated)))
        self.messages.append(
            email.message_from_bytes(envelope.content, policy=email.policy.default)
        )
        return "250 OK"


@pytest.fixture
def cert(tmp_path: Path) -> tuple[str, str]:
    crt, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-days",
            "1",
            "-keyout",
            str(key),
            "-out",
            str(crt),
        ],
        check=True,
        capture_output=True,
    )
    return str(crt), str(key)


def start_smtp(inbox: Inbox, **params: Any) -> Any:
    from aiosmtpd.controller import Controller

    controller = Controller(inbox, hostname="127.0.0.1", port=free_port(), **params)
    controller.start()
    return controller


@pytest.fixture
def plain_smtp() -> Any:
    inbox = Inbox()
    controller = start_smtp(inbox)
    yield controller.port, inbox
    controller.stop()


@pytest.fixture
def tls_smtp(cert: tuple[str, str]) -> Any:
    import ssl

    from aiosmtpd.smtp import AuthResult

    def authenticate(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> Any:
        ok = data.login == b"alerts" and data.password == PASSWORD.encode()
        return AuthResult(success=ok, handled=False)  # handled=True would send no reply

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*cert)
    inbox = Inbox()
    controller = start_smtp(inbox, tls_context=context, require_starttls=True,
                            authenticator=authenticate, auth_require_tls=True)  # fmt: skip
    yield controller.port, inbox, cert[0]
    controller.stop()


def email_env(port: int, **extra: str) -> dict[str, str]:
    return {"EMAIL_SMTP_HOST": "127.0.0.1", "EMAIL_SMTP_PORT": str(port),
            "EMAIL_FROM": "alerts@example.org", "EMAIL_TO": "ops@example.org, dev@example.org",
            **extra}  # fmt: skip


def assert_alert_mail(message: Any, alert: Alert) -> None:
    assert message["Subject"] == "[error] nightly-etl failed at task 'load'"
    assert message["To"] == "ops@example.org, dev@example.org"
    assert message["From"] == "alerts@example.org"
    text = message.get_body(preferencelist=("plain",)).get_content()
    assert "Failing task: load" in text
    assert "connecting to warehouse" in text and "ERROR: table <sales> is locked & busy" in text
    html = message.get_body(preferencelist=("html",)).get_content()
    assert "<h2>nightly-etl failed at task &#x27;load&#x27;</h2>" in html


def test_smtp_without_tls(plain_smtp: Any, alert: Alert) -> None:
    port, inbox = plain_smtp
    make_channel("email", email_env(port)).send(alert)
    (message,) = inbox.messages
    assert_alert_mail(message, alert)
    assert inbox.envelopes[0].rcpt_tos == ["ops@example.org", "dev@example.org"]
    assert inbox.sessions == [(False, False)]


def test_smtp_with_starttls_and_login(tls_smtp: Any, alert: Alert) -> None:
    port, inbox, ca_file = tls_smtp
    env = email_env(port, EMAIL_SMTP_USER="alerts", EMAIL_SMTP_PASSWORD=PASSWORD,
                    EMAIL_SMTP_CA_FILE=ca_file)  # fmt: skip
    make_channel("email", env).send(alert)
    (message,) = inbox.messages
    assert_alert_mail(message, alert)
    assert inbox.sessions == [(True, True)]


def test_smtp_wrong_password_is_refused_without_showing_it(tls_smtp: Any, alert: Alert) -> None:
    port, inbox, ca_file = tls_smtp
    env = email_env(port, EMAIL_SMTP_USER="alerts", EMAIL_SMTP_PASSWORD=PASSWORD + "-wrong",
                    EMAIL_SMTP_CA_FILE=ca_file)  # fmt: skip
    with pytest.raises(ChannelError) as info:
        make_channel("email", env).send(alert)
    message = str(info.value)
    assert message.startswith(
        f"email: SMTP server 127.0.0.1:{port} refused the login of user 'alerts'"
    )
    assert PASSWORD not in message and not inbox.messages


def test_smtp_untrusted_certificate_is_refused(tls_smtp: Any, alert: Alert) -> None:
    port, inbox, _ = tls_smtp
    env = email_env(port, EMAIL_SMTP_USER="alerts", EMAIL_SMTP_PASSWORD=PASSWORD)
    with pytest.raises(ChannelError, match="CERTIFICATE_VERIFY_FAILED"):
        make_channel("email", env).send(alert)
    assert not inbox.messages


# -- delivery and retries ----------------------------------------------------------------------


def test_channels_that_are_down_fail_after_three_fast_attempts(alert: Alert, caplog: Any) -> None:
    caplog.set_level(logging.DEBUG)
    port = free_port()  # nothing listens there
    url = f"http://127.0.0.1:{port}{SLACK_PATH}"
    channels = [
        SlackChannel(url),
        WebhookChannel(url),
        SmtpChannel("127.0.0.1", port, "a@x", ["b@x"], user="u", password=PASSWORD),
        SendGridChannel(API_KEY, "a@x", ["b@x"], base_url=f"http://127.0.0.1:{port}"),
    ]
    started = time.monotonic()
    results = deliver(alert, channels, attempts=3, delay=0.01)
    assert time.monotonic() - started < 2
    assert [(r.channel, r.ok, r.attempts) for r in results] == [
        ("slack", False, 3),
        ("webhook", False, 3),
        ("email", False, 3),
        ("email", False, 3),
    ]
    assert (
        results[0].error
        == f"slack: cannot reach http://127.0.0.1:{port}/***: [Errno 111] Connection refused"
    )
    assert results[2].error == (f"email: SMTP server 127.0.0.1:{port}: connection refused "
                                "(is the server running and the port right?)")  # fmt: skip
    seen = json.dumps([r.to_dict() for r in results]) + caplog.text + alert.text()
    for secret in (SLACK_PATH, "hookSECRETxyz123", PASSWORD, API_KEY):
        assert secret not in seen


def test_deliver_retries_until_success_and_never_raises(httpserver: Any, alert: Alert) -> None:
    httpserver.expect_oneshot_request("/hook").respond_with_data("busy", status=503)
    httpserver.expect_request("/hook").respond_with_data("ok")

    class Broken:
        name = "broken"

        def send(self, alert: Alert) -> None:
            raise RuntimeError("bug in a channel")

    results = deliver(alert, [WebhookChannel(httpserver.url_for("/hook")), Broken()], delay=0.01)
    assert [r.to_dict() for r in results] == [
        {"channel": "webhook", "ok": True, "attempts": 2, "error": None},
        {"channel": "broken", "ok": False, "attempts": 3,
         "error": "broken: unexpected RuntimeError: bug in a channel"},
    ]  # fmt: skip
    assert len(httpserver.log) == 2
    assert isinstance(httpserver.log[0][1], Response)
