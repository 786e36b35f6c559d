"""Webhook signatures: HMAC-SHA256 of the raw body in ``X-Hub-Signature-256`` (GitHub's scheme).

The header reads ``sha256=<hex digest>``, the digest being HMAC-SHA256 of the exact body bytes
keyed with the shared secret. The comparison takes constant time (``hmac.compare_digest``).
SHA-1 signatures (``sha1=...``, GitHub's legacy ``X-Hub-Signature``) are refused: SHA-1 is not
accepted as proof of the sender any more, and GitHub always sends the SHA-256 header too.
"""

from __future__ import annotations

import hashlib
import hmac

HEADER = "X-Hub-Signature-256"
LEGACY_HEADER = "X-Hub-Signature"
PREFIX = "sha256="


def sign(secret: str | bytes, body: bytes) -> str:
    """The header value a sender computes for ``body``: ``sha256=<hex>``."""
    key = secret.encode("utf-8") if isinstance(secret, str) else secret
    return PREFIX + hmac.new(key, body, hashlib.sha256).hexdigest()


def check_signature(
    secret: str | bytes, body: bytes, header: str | None, *, legacy_header: str | None = None
) -> str | None:
    """None when ``header`` is a valid signature of ``body``; else why it is refused.

    ``header`` is the value of ``X-Hub-Signature-256`` (None when absent); ``legacy_header`` the
    value of ``X-Hub-Signature``, only used to explain a refusal of a SHA-1-only sender. The
    reason never contains the expected digest.
    """
    if header is None or not header.strip():
        if legacy_header:
            return f"only a SHA-1 signature ({LEGACY_HEADER}) was sent; {HEADER} is required"
        return f"the {HEADER} header is missing"
    value = header.strip()
    if value.lower().startswith("sha1="):
        return f"SHA-1 signatures are not accepted; send {HEADER}: sha256=<hex digest>"
    if not value.lower().startswith(PREFIX):
        return f"{HEADER} must read sha256=<hex digest>"
    # Hex digests compare case-insensitively; undecodable characters can never match.
    received = value[len(PREFIX) :].lower().encode("ascii", "replace")
    expected = sign(secret, body)[len(PREFIX) :].encode("ascii")
    if not hmac.compare_digest(expected, received):
        return "the signature does not match the body (wrong secret, or the body was altered)"
    return None
