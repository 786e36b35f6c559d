"""X-Hub-Signature-256 checks, against GitHub's documented test vector."""

from __future__ import annotations

import pytest

from jupyter_workflows.triggers.signature import check_signature, sign

# From GitHub's "Validating webhook deliveries" documentation.
SECRET = "It's a Secret to Everybody"
PAYLOAD = b"Hello, World!"
SIGNATURE = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"


def test_sign_reproduces_githubs_test_vector() -> None:
    assert sign(SECRET, PAYLOAD) == SIGNATURE
    assert sign(SECRET.encode(), PAYLOAD) == SIGNATURE


def test_the_documented_signature_is_accepted() -> None:
    assert check_signature(SECRET, PAYLOAD, SIGNATURE) is None
    assert check_signature(SECRET, PAYLOAD, SIGNATURE.upper().replace("SHA256=", "sha256=")) is None


@pytest.mark.parametrize("position", [len("sha256="), 40, len(SIGNATURE) - 1])
def test_a_flipped_hex_digit_is_refused(position: int) -> None:
    digit = SIGNATURE[position]
    flipped = SIGNATURE[:position] + ("0" if digit != "0" else "1") + SIGNATURE[position + 1 :]
    assert "does not match" in (check_signature(SECRET, PAYLOAD, flipped) or "")


def test_a_flipped_byte_of_the_body_or_another_secret_is_refused() -> None:
    assert check_signature(SECRET, b"Hello, World?", SIGNATURE) is not None
    assert check_signature(SECRET + " ", PAYLOAD, SIGNATURE) is not None


@pytest.mark.parametrize("header", [None, "", "   "])
def test_a_missing_signature_is_refused(header: str | None) -> None:
    assert "missing" in (check_signature(SECRET, PAYLOAD, header) or "")


def test_sha1_signatures_are_refused_even_when_correct() -> None:
    import hashlib
    import hmac

    sha1 = "sha1=" + hmac.new(SECRET.encode(), PAYLOAD, hashlib.sha1).hexdigest()
    assert "SHA-1" in (check_signature(SECRET, PAYLOAD, sha1) or "")
    only_legacy = check_signature(SECRET, PAYLOAD, None, legacy_header=sha1)
    assert only_legacy is not None and "SHA-1" in only_legacy


@pytest.mark.parametrize(
    "header",
    [
        "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
        "sha256=",
        "sha256=é",
        "md5=x",
    ],
)
def test_malformed_headers_are_refused_without_raising(header: str) -> None:
    assert check_signature(SECRET, PAYLOAD, header) is not None


def test_the_reason_never_reveals_the_expected_digest() -> None:
    reason = check_signature(SECRET, PAYLOAD, "sha256=00") or ""
    assert SIGNATURE[len("sha256=") :] not in reason
