"""Webhook signatures: HMAC-SHA256 with a shared secret, in one of three senders' schemes.

- ``github`` (the default): ``X-Hub-Signature-256: sha256=<hex>``, the HMAC of the exact body.
  It carries no time, so the same body always has the same signature.
- ``stripe``: ``Stripe-Signature: t=<unix seconds>,v1=<hex>[,v1=<hex>...]``, the HMAC of
  ``<t>.<body>`` (several ``v1`` while a secret is being rolled; any one may match).
- ``slack``: ``X-Slack-Request-Timestamp: <unix seconds>`` and ``X-Slack-Signature: v0=<hex>``,
  the HMAC of ``v0:<t>:<body>``.

``verify`` checks the signature first (401 when it is missing or does not match), then, for the
timestamped schemes, that the time is within ``tolerance`` of now, past or future (403: the
signature is genuine but too old or too new: a replay, or a clock that is wrong). What it
returns, the digest the signature covers, is what the server remembers to refuse replays.

Digests are compared in constant time (``hmac.compare_digest``); no reason given for a refusal
contains the expected digest or the secret. SHA-1 signatures (``sha1=...``, GitHub's legacy
``X-Hub-Signature``) are refused: SHA-1 is not accepted as proof of the sender any more, and
GitHub always sends the SHA-256 header too.
"""

from __future__ import annotations

import hashlib
import hmac
import math
from collections.abc import Mapping
from dataclasses import dataclass

HEADER = "X-Hub-Signature-256"
LEGACY_HEADER = "X-Hub-Signature"
PREFIX = "sha256="
STRIPE_HEADER = "Stripe-Signature"
SLACK_HEADER = "X-Slack-Signature"
SLACK_TIMESTAMP_HEADER = "X-Slack-Request-Timestamp"
SCHEMES = ("github", "stripe", "slack")
_MAX_TIMESTAMP_DIGITS = 12  # Unix seconds until the year 33658: longer is not a time


class SignatureRefused(Exception):
    """Why a request is refused: ``status`` 401 (no valid signature) or 403 (a valid signature
    whose timestamp is outside the tolerance). ``reason`` is safe to show the caller."""

    def __init__(self, reason: str, status: int = 401):
        super().__init__(reason)
        self.reason = reason
        self.status = status


@dataclass(frozen=True)
class Signed:
    """A verified request: the hex digest its signature carried, and its timestamp (stripe and
    slack). The digest covers the body (and the timestamp): the same digest is the same request."""

    digest: str
    timestamp: int | None = None


def _hmac(secret: str | bytes, message: bytes) -> str:
    key = secret.encode("utf-8") if isinstance(secret, str) else secret
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def sign(secret: str | bytes, body: bytes) -> str:
    """The ``X-Hub-Signature-256`` value a sender computes for ``body``: ``sha256=<hex>``."""
    return PREFIX + _hmac(secret, body)


def sign_stripe(secret: str | bytes, body: bytes, timestamp: int) -> str:
    """The ``Stripe-Signature`` value for ``body`` sent at ``timestamp``: ``t=...,v1=...``."""
    return f"t={timestamp},v1=" + _hmac(secret, f"{timestamp}.".encode() + body)


def sign_slack(secret: str | bytes, body: bytes, timestamp: int) -> dict[str, str]:
    """The two headers Slack sends with ``body`` at ``timestamp``."""
    digest = _hmac(secret, f"v0:{timestamp}:".encode() + body)
    return {SLACK_TIMESTAMP_HEADER: str(timestamp), SLACK_HEADER: "v0=" + digest}


def check_signature(
    secret: str | bytes, body: bytes, header: str | None, *, legacy_header: str | None = None
) -> str | None:
    """None when ``header`` is a valid ``X-Hub-Signature-256`` of ``body``; else why it is refused.

    ``legacy_header`` is the value of ``X-Hub-Signature``, only used to explain a refusal of a
    SHA-1-only sender.
    """
    try:
        _github(secret, body, header, legacy_header)
    except SignatureRefused as refused:
        return refused.reason
    return None


def verify(
    scheme: str,
    secret: str | bytes,
    body: bytes,
    headers: Mapping[str, str],
    *,
    now: float,
    tolerance: float,
) -> Signed:
    """The verified signature of a request; raises SignatureRefused.

    ``headers`` must look names up case-insensitively (tornado's ``HTTPHeaders`` does);
    ``now`` is Unix seconds; ``tolerance`` (seconds) only applies to stripe and slack.
    """
    if scheme == "github":
        return Signed(_github(secret, body, headers.get(HEADER), headers.get(LEGACY_HEADER)))
    if scheme == "stripe":
        signed = _stripe(secret, body, headers.get(STRIPE_HEADER))
    elif scheme == "slack":
        signed = _slack(
            secret, body, headers.get(SLACK_HEADER), headers.get(SLACK_TIMESTAMP_HEADER)
        )
    else:
        raise ValueError(f"unknown signature scheme {scheme!r}; expected one of {SCHEMES}")
    assert signed.timestamp is not None
    _check_time(signed.timestamp, now, tolerance)
    return signed


def _github(secret: str | bytes, body: bytes, header: str | None, legacy: str | None) -> str:
    if header is None or not header.strip():
        if legacy:
            raise SignatureRefused(
                f"only a SHA-1 signature ({LEGACY_HEADER}) was sent; {HEADER} is required"
            )
        raise SignatureRefused(f"the {HEADER} header is missing")
    value = header.strip()
    if value.lower().startswith("sha1="):
        raise SignatureRefused(
            f"SHA-1 signatures are not accepted; send {HEADER}: sha256=<hex digest>"
        )
    if not value.lower().startswith(PREFIX):
        raise SignatureRefused(f"{HEADER} must read sha256=<hex digest>")
    expected = _hmac(secret, body)
    _compare(expected, [value[len(PREFIX) :]])
    return expected


def _stripe(secret: str | bytes, body: bytes, header: str | None) -> Signed:
    if header is None or not header.strip():
        raise SignatureRefused(f"the {STRIPE_HEADER} header is missing")
    times: list[str] = []
    candidates: list[str] = []
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        if name == "t":
            times.append(value.strip())
        elif name == "v1":
            candidates.append(value.strip())
    if len(times) != 1 or not candidates:
        raise SignatureRefused(f"{STRIPE_HEADER} must read t=<Unix seconds>,v1=<hex digest>")
    timestamp = _timestamp(times[0], STRIPE_HEADER)
    # The timestamp is signed as it was sent: "t=0042" is not "t=42".
    expected = _hmac(secret, f"{times[0]}.".encode() + body)
    _compare(expected, candidates)
    return Signed(expected, timestamp)


def _slack(secret: str | bytes, body: bytes, header: str | None, stamp: str | None) -> Signed:
    if header is None or not header.strip():
        raise SignatureRefused(f"the {SLACK_HEADER} header is missing")
    if stamp is None or not stamp.strip():
        raise SignatureRefused(f"the {SLACK_TIMESTAMP_HEADER} header is missing")
    value = header.strip()
    if not value.lower().startswith("v0="):
        raise SignatureRefused(f"{SLACK_HEADER} must read v0=<hex digest>")
    timestamp = _timestamp(stamp.strip(), SLACK_TIMESTAMP_HEADER)
    expected = _hmac(secret, f"v0:{stamp.strip()}:".encode() + body)
    _compare(expected, [value[3:]])
    return Signed(expected, timestamp)


def _timestamp(text: str, header: str) -> int:
    if not (text.isascii() and text.isdigit() and len(text) <= _MAX_TIMESTAMP_DIGITS):
        raise SignatureRefused(f"the timestamp in {header} must be a Unix time in seconds")
    return int(text)


def _compare(expected: str, received: list[str]) -> None:
    """Raise unless one of ``received`` is ``expected``; every candidate is compared in full."""
    # Hex digests compare case-insensitively; undecodable characters can never match.
    wanted = expected.encode("ascii")
    matches = [hmac.compare_digest(wanted, r.lower().encode("ascii", "replace")) for r in received]
    if not any(matches):
        raise SignatureRefused(
            "the signature does not match the body (wrong secret, or the body was altered)"
        )


def _check_time(timestamp: int, now: float, tolerance: float) -> None:
    age = now - timestamp
    if age > tolerance:
        raise SignatureRefused(
            f"the request's timestamp is {math.ceil(age)} s old, beyond the tolerance of "
            f"{tolerance:g} s (a replay, or the sender's clock is wrong)",
            403,
        )
    if -age > tolerance:
        raise SignatureRefused(
            f"the request's timestamp is {math.ceil(-age)} s in the future, beyond the "
            f"tolerance of {tolerance:g} s (the sender's or the server's clock is wrong)",
            403,
        )
