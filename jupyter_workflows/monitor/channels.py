"""Where alerts go: console, Slack, email (SMTP or SendGrid) and a generic JSON webhook.

Channels are configured from environment variables (``make_channel(name, env)``; ``env``
defaults to ``os.environ``):

- ``console``: prints the alert to stderr. Needs nothing.
- ``slack``: ``SLACK_WEBHOOK_URL`` (an incoming-webhook URL), optional ``SLACK_CHANNEL``.
- ``email``: SendGrid when ``SENDGRID_API_KEY`` is set (optional ``SENDGRID_BASE_URL``,
  default https://api.sendgrid.com), else SMTP: ``EMAIL_SMTP_HOST``, ``EMAIL_SMTP_PORT``
  (587), ``EMAIL_SMTP_USER``, ``EMAIL_SMTP_PASSWORD``, ``EMAIL_SMTP_CA_FILE`` (a PEM bundle
  to trust for STARTTLS instead of the system's). Both need ``EMAIL_FROM`` and ``EMAIL_TO``
  (comma-separated). See ``channel_email.py``.
- ``webhook``: POSTs ``Alert.to_dict()`` as JSON to ``ALERT_WEBHOOK_URL``.

Names map to factories (``(env) -> Channel``) in ``plugins.ALERT_CHANNELS``; another package
adds a channel through the entry-point group ``jupyter_workflows.alert_channels``.

``deliver`` sends one alert to several channels with retries and never raises. Secrets
(webhook URL paths, API keys, passwords) never appear in a ``ChannelError`` message or a
``DeliveryResult``: URLs are shown as ``scheme://host/***``.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TextIO
from urllib.parse import urlsplit

from ..errors import UnknownPlugin
from ..plugins import ALERT_CHANNELS
from .alert import Alert, Channel, ChannelError

__all__ = [
    "ConsoleChannel",
    "DeliveryResult",
    "SlackChannel",
    "WebhookChannel",
    "deliver",
    "make_channel",
    "make_channels",
    "redact_url",
]

log = logging.getLogger(__name__)

HTTP_TIMEOUT = 10.0
SLACK_TEXT_LIMIT = 3000  # Slack refuses a section text longer than this
SLACK_HEADER_LIMIT = 150


# -- delivery ---------------------------------------------------------------------------------

_limit = threading.local()


@contextmanager
def time_limit(deadline: float | None) -> Iterator[None]:
    """Sends in this thread give up at ``deadline`` (``time.monotonic()``) at the latest: the
    built-in channels shorten their network timeouts to what is left (``timeout_for``)."""
    previous = getattr(_limit, "deadline", None)
    _limit.deadline = deadline
    try:
        yield
    finally:
        _limit.deadline = previous


def timeout_for(default: float) -> float:
    """A network timeout for a send now: ``default``, or less under a ``time_limit``."""
    deadline = getattr(_limit, "deadline", None)
    if deadline is None:
        return default
    return max(0.05, min(default, deadline - time.monotonic()))


@dataclass
class DeliveryResult:
    """How sending one alert to one channel went; ``error`` is the last reason (no secrets)."""

    channel: str
    ok: bool
    attempts: int
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"channel": self.channel, "ok": self.ok, "attempts": self.attempts,
                "error": self.error}  # fmt: skip


def deliver(
    alert: Alert, channels: Iterable[Channel], attempts: int = 3, delay: float = 0.5
) -> list[DeliveryResult]:
    """Send ``alert`` to each channel, up to ``attempts`` times each; never raises.

    The wait between attempts grows (``delay``, ``2 * delay``, ...). A channel's failure
    does not stop the others.
    """
    return [_deliver_one(alert, channel, max(1, attempts), delay) for channel in channels]


def _deliver_one(alert: Alert, channel: Channel, attempts: int, delay: float) -> DeliveryResult:
    name = getattr(channel, "name", type(channel).__name__)
    error: str | None = None
    for attempt in range(1, attempts + 1):
        try:
            channel.send(alert)
            return DeliveryResult(name, True, attempt)
        except ChannelError as exc:
            error = str(exc)
        except Exception as exc:  # a channel's bug must not stop the other channels
            error = f"{name}: unexpected {type(exc).__name__}: {exc}"
        error = _redact(error, getattr(channel, "secrets", ()))
        log.info("alert %s: channel %s attempt %d failed: %s", alert.key(), name, attempt, error)
        if attempt < attempts:
            time.sleep(delay * attempt)
    return DeliveryResult(name, False, attempts, error)


def _redact(text: str, secrets: Iterable[str]) -> str:
    for value in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(value, "***")
    return text


def redact_url(url: str) -> str:
    """``scheme://host[:port]/***``: where a URL points, without its secret path or query."""
    parts = urlsplit(url)
    host = parts.hostname or "?"
    port = f":{parts.port}" if parts.port else ""
    hidden = "/***" if parts.path.strip("/") or parts.query else ""
    return f"{parts.scheme}://{host}{port}{hidden}"


# -- construction -----------------------------------------------------------------------------

# The secret variables each built-in channel reads: where the environment leaves one unset,
# it comes from the secret sources (``secrets.credentials``).
CREDENTIALS = {
    "slack": ("SLACK_WEBHOOK_URL",),
    "webhook": ("ALERT_WEBHOOK_URL",),
    "email": ("SENDGRID_API_KEY", "EMAIL_SMTP_PASSWORD"),
}


def make_channel(name: str, env: Mapping[str, str] | None = None) -> Channel:
    """The channel called ``name``, configured from ``env`` (default ``os.environ``).

    Raises ChannelError naming the missing variable (``slack needs SLACK_WEBHOOK_URL``)
    or the unknown name.
    """
    env = os.environ if env is None else env
    try:
        factory = ALERT_CHANNELS.load(name.strip().lower())
    except UnknownPlugin as exc:
        known = ", ".join(exc.known)
        raise ChannelError(f"unknown alert channel '{name}': expected one of {known}") from None
    channel: Channel = factory(env)
    return channel


def make_channels(names: Iterable[str], env: Mapping[str, str] | None = None) -> list[Channel]:
    """One channel per distinct name; raises ChannelError listing every unusable one."""
    channels: list[Channel] = []
    problems: list[str] = []
    seen: set[str] = set()
    for name in names:
        key = name.strip().lower()
        if key in seen:
            continue
        seen.add(key)
        try:
            channels.append(make_channel(name, env))
        except ChannelError as exc:
            problems.append(str(exc))
    if problems:
        raise ChannelError("; ".join(problems))
    return channels


def require(env: Mapping[str, str], channel: str, *names: str) -> list[str]:
    """The values of ``names`` in ``env``; ChannelError naming the missing ones."""
    missing = [n for n in names if not env.get(n, "").strip()]
    if missing:
        raise ChannelError(f"{channel} needs {' and '.join(missing)}")
    return [env[n].strip() for n in names]


def console_channel(env: Mapping[str, str]) -> Channel:
    return ConsoleChannel()


def slack_channel(env: Mapping[str, str]) -> Channel:
    (url,) = require(env, "slack", "SLACK_WEBHOOK_URL")
    return SlackChannel(url, channel=env.get("SLACK_CHANNEL") or None)


def webhook_channel(env: Mapping[str, str]) -> Channel:
    (url,) = require(env, "webhook", "ALERT_WEBHOOK_URL")
    return WebhookChannel(url)


# -- console ----------------------------------------------------------------------------------


@dataclass
class ConsoleChannel:
    """Prints the alert as a framed block on ``stream`` (stderr when None, looked up per send)."""

    stream: TextIO | None = None
    name: str = "console"
    secrets: list[str] = field(default_factory=list)

    def send(self, alert: Alert) -> None:
        stream = self.stream or sys.stderr
        rule = "=" * 72
        try:
            stream.write(f"{rule}\nALERT {alert.text()}{rule}\n")
            stream.flush()
        except (OSError, ValueError) as exc:  # a closed or broken stderr
            raise ChannelError(f"console: cannot write to stderr: {exc}") from None


# -- HTTP channels ----------------------------------------------------------------------------


def post_json(
    channel: str,
    url: str,
    payload: Any,
    *,
    headers: Mapping[str, str] | None = None,
    secrets: Iterable[str] = (),
) -> None:
    """POST ``payload`` as JSON; ChannelError on a transport error or a non-2xx answer.

    Messages show the URL as ``redact_url(url)`` and never contain ``secrets``.
    """
    import httpx

    hidden = [url, *secrets]
    where = redact_url(url)
    try:
        # The timeout is taken once the client is built: building it loads the CA bundle
        # (tens of ms, more with two sends at once), which would otherwise run the send past
        # its deadline and leave its outcome unrecorded.
        with httpx.Client() as client:
            response = client.post(
                url, json=payload, headers=dict(headers or {}), timeout=timeout_for(HTTP_TIMEOUT)
            )
    except httpx.HTTPError as exc:
        reason = _redact(str(exc) or type(exc).__name__, hidden)
        raise ChannelError(f"{channel}: cannot reach {where}: {reason}") from None
    if not 200 <= response.status_code < 300:
        body = _redact(response.text.strip()[:200], hidden)
        detail = f": {body}" if body else ""
        raise ChannelError(f"{channel}: {where} answered HTTP {response.status_code}{detail}")


@dataclass
class WebhookChannel:
    """POSTs ``Alert.to_dict()`` as JSON to a URL (the URL's path counts as a secret)."""

    url: str
    name: str = "webhook"

    @property
    def secrets(self) -> list[str]:
        return [self.url]

    def send(self, alert: Alert) -> None:
        post_json(self.name, self.url, alert.to_dict())


@dataclass
class SlackChannel:
    """Posts a Block Kit message to a Slack incoming webhook (the URL is a secret)."""

    url: str
    channel: str | None = None
    name: str = "slack"

    @property
    def secrets(self) -> list[str]:
        return [self.url]

    def send(self, alert: Alert) -> None:
        post_json(self.name, self.url, slack_payload(alert, self.channel))


def slack_payload(alert: Alert, channel: str | None = None) -> dict[str, Any]:
    """The Slack message: header, summary, fields, figures and a code block of log lines."""
    facts = [("Workflow", alert.workflow), ("Execution", alert.execution_id),
             ("Rule", alert.rule), ("Failing task", alert.failing_task)]  # fmt: skip
    fields = [_mrkdwn(f"*{label}*\n{_esc(str(value))}") for label, value in facts if value]
    title = _clip(alert.title, SLACK_HEADER_LIMIT)
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": title}},
        {"type": "section", "text": _mrkdwn(_clip(_esc(alert.summary), SLACK_TEXT_LIMIT))},
        {"type": "section", "fields": fields},
    ]
    if alert.figures:
        shown = " · ".join(f"{k}: {_esc(_num(v))}" for k, v in alert.figures.items())
        blocks.append({"type": "context", "elements": [_mrkdwn(_clip(shown, SLACK_TEXT_LIMIT))]})
    if alert.log_tail:
        blocks.append({"type": "section", "text": _mrkdwn(_log_block(alert.log_tail))})
    payload: dict[str, Any] = {"text": f"[{alert.severity}] {alert.title}", "blocks": blocks}
    if channel:
        payload["channel"] = channel
    return payload


def _mrkdwn(text: str) -> dict[str, str]:
    return {"type": "mrkdwn", "text": text}


def _log_block(lines: list[str]) -> str:
    """The last lines in a code block, dropping the oldest ones to fit Slack's limit."""
    kept: list[str] = []
    size = len("*Last log lines*\n```\n```") + 1
    for line in reversed(lines):
        line = _esc(line.replace("```", "'''"))
        if size + len(line) + 1 > SLACK_TEXT_LIMIT:
            break
        kept.insert(0, line)
        size += len(line) + 1
    return "*Last log lines*\n```\n" + "\n".join(kept) + "\n```"


def _esc(text: str) -> str:
    # Slack's mrkdwn treats these three as control characters.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _num(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)
