"""The ``email`` alert channel: SMTP (smtplib) or SendGrid's v3 mail-send API.

SendGrid is used when ``SENDGRID_API_KEY`` is set (``SENDGRID_BASE_URL`` overrides
https://api.sendgrid.com, e.g. for a local test server). Otherwise SMTP: ``EMAIL_SMTP_HOST``,
``EMAIL_SMTP_PORT`` (default 587), and optionally ``EMAIL_SMTP_USER`` /
``EMAIL_SMTP_PASSWORD`` (login only when a user is set). STARTTLS is used whenever the
server offers it, verified against the system's CAs or, when ``EMAIL_SMTP_CA_FILE`` names a
PEM file, against the certificates in that file (a private CA or a self-signed server).
Both need ``EMAIL_FROM`` and ``EMAIL_TO`` (comma-separated addresses).

The mail is the plain text of ``Alert.text()`` plus a simple HTML alternative.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .alert import Alert, Channel, ChannelError
from .channels import post_json, require, timeout_for

DEFAULT_SMTP_PORT = 587
SENDGRID_URL = "https://api.sendgrid.com"
SMTP_TIMEOUT = 10.0


def email_channel(env: Mapping[str, str]) -> Channel:
    """SendGrid when ``SENDGRID_API_KEY`` is set, else SMTP; ChannelError names what is missing."""
    sender, to = require(env, "email", "EMAIL_FROM", "EMAIL_TO")
    recipients = [a.strip() for a in to.split(",") if a.strip()]
    if not recipients:
        raise ChannelError("email needs EMAIL_TO (comma-separated addresses)")
    key = env.get("SENDGRID_API_KEY", "").strip()
    if key:
        base = env.get("SENDGRID_BASE_URL", "").strip() or SENDGRID_URL
        return SendGridChannel(key, sender, recipients, base_url=base)
    if not env.get("EMAIL_SMTP_HOST", "").strip():
        raise ChannelError("email needs EMAIL_SMTP_HOST (or SENDGRID_API_KEY)")
    port_text = env.get("EMAIL_SMTP_PORT", "").strip() or str(DEFAULT_SMTP_PORT)
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ChannelError(f"email: EMAIL_SMTP_PORT must be a port number, got {port_text!r}")
    return SmtpChannel(
        host=env["EMAIL_SMTP_HOST"].strip(),
        port=int(port_text),
        sender=sender,
        recipients=recipients,
        user=env.get("EMAIL_SMTP_USER", "").strip() or None,
        password=env.get("EMAIL_SMTP_PASSWORD") or None,
        ca_file=env.get("EMAIL_SMTP_CA_FILE", "").strip() or None,
    )


def subject(alert: Alert) -> str:
    return f"[{alert.severity}] {alert.title}"


def html_body(alert: Alert) -> str:
    """A simple HTML rendering of the alert (the plain text stays the main part)."""
    e = html.escape
    facts = [("Workflow", alert.workflow), ("Execution", alert.execution_id),
             ("Rule", alert.rule), ("Failing task", alert.failing_task)]  # fmt: skip
    facts += [(name, str(value)) for name, value in alert.figures.items()]
    rows = "".join(f"<tr><th align='left'>{e(k)}</th><td>{e(str(v))}</td></tr>"
                   for k, v in facts if v is not None)  # fmt: skip
    parts = [f"<h2>{e(alert.title)}</h2>", f"<p>{e(alert.summary)}</p>", f"<table>{rows}</table>"]
    if alert.log_tail:
        parts.append("<h3>Last log lines</h3><pre>" + e("\n".join(alert.log_tail)) + "</pre>")
    return "<html><body>" + "".join(parts) + "</body></html>"


@dataclass
class SmtpChannel:
    """Sends the alert by SMTP, with STARTTLS when offered and login when a user is set."""

    host: str
    port: int
    sender: str
    recipients: list[str]
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    ca_file: str | None = None
    name: str = "email"

    @property
    def secrets(self) -> list[str]:
        return [self.password] if self.password else []

    def send(self, alert: Alert) -> None:
        import smtplib
        import ssl

        where = f"email: SMTP server {self.host}:{self.port}"
        try:
            with smtplib.SMTP(self.host, self.port, timeout=timeout_for(SMTP_TIMEOUT)) as smtp:
                smtp.ehlo()
                if smtp.has_extn("starttls"):
                    smtp.starttls(context=self._tls_context())
                    smtp.ehlo()
                if self.user:
                    smtp.login(self.user, self.password or "")
                smtp.send_message(self._message(alert))
        except smtplib.SMTPAuthenticationError as exc:
            raise ChannelError(f"{where} refused the login of user '{self.user}': "
                               f"{self._reason(exc)}") from None  # fmt: skip
        except smtplib.SMTPNotSupportedError as exc:
            raise ChannelError(f"{where}: {self._reason(exc)}") from None
        except (smtplib.SMTPException, ssl.SSLError, OSError) as exc:
            raise ChannelError(f"{where}: {self._reason(exc)}") from None

    def _tls_context(self) -> Any:
        import ssl

        try:
            return ssl.create_default_context(cafile=self.ca_file)
        except (OSError, ssl.SSLError) as exc:
            raise ChannelError(
                f"email: cannot load EMAIL_SMTP_CA_FILE {self.ca_file}: {exc}"
            ) from None

    def _message(self, alert: Alert) -> Any:
        from email.message import EmailMessage

        msg = EmailMessage()
        msg["Subject"] = subject(alert)
        msg["From"] = self.sender
        msg["To"] = ", ".join(self.recipients)
        msg.set_content(alert.text())
        msg.add_alternative(html_body(alert), subtype="html")
        return msg

    def _reason(self, exc: Exception) -> str:
        text = str(exc) or type(exc).__name__
        if isinstance(exc, ConnectionRefusedError) or "Connection refused" in text:
            text = "connection refused (is the server running and the port right?)"
        for secret in self.secrets:
            text = text.replace(secret, "***")
        return text


@dataclass
class SendGridChannel:
    """Sends the alert through SendGrid's v3 mail-send API (202 Accepted on success)."""

    api_key: str = field(repr=False)
    sender: str
    recipients: list[str]
    base_url: str = SENDGRID_URL
    name: str = "email"

    @property
    def secrets(self) -> list[str]:
        return [self.api_key]

    def send(self, alert: Alert) -> None:
        url = self.base_url.rstrip("/") + "/v3/mail/send"
        headers = {"Authorization": f"Bearer {self.api_key}"}
        post_json("email (SendGrid)", url, sendgrid_payload(alert, self.sender, self.recipients),
                  headers=headers, secrets=self.secrets)  # fmt: skip


def sendgrid_payload(alert: Alert, sender: str, recipients: list[str]) -> dict[str, Any]:
    """The v3 mail-send JSON: one personalization to every recipient, text and HTML."""
    return {
        "personalizations": [{"to": [{"email": r} for r in recipients]}],
        "from": {"email": sender},
        "subject": subject(alert),
        "content": [
            {"type": "text/plain", "value": alert.text()},
            {"type": "text/html", "value": html_body(alert)},
        ],
    }
