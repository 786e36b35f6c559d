"""Signature checks: GitHub's, Stripe's and Slack's schemes, against documented test vectors."""

from __future__ import annotations

import pytest
from tornado.httputil import HTTPHeaders

from jupyter_workflows.triggers.signature import (
    SignatureRefused,
    Signed,
    check_signature,
    sign,
    sign_slack,
    sign_stripe,
    verify,
)

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


# --- stripe and slack: a signed timestamp, checked against a tolerance ----------------------

# From Slack's "Verifying requests from Slack" documentation.
SLACK_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
SLACK_TIME = 1531420618
SLACK_BODY = (
    b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id="
    b"G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-"
    b"collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F3977008"
    b"85554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c44"
    b"7fce8b6703c"
)
SLACK_SIGNATURE = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"


def headers(**values: str) -> HTTPHeaders:
    """Request headers as the server sees them: names looked up in any case."""
    return HTTPHeaders({name.replace("_", "-"): value for name, value in values.items()})


def test_slacks_documented_request_is_accepted_within_the_tolerance() -> None:
    assert sign_slack(SLACK_SECRET, SLACK_BODY, SLACK_TIME)["X-Slack-Signature"] == SLACK_SIGNATURE
    sent = headers(x_slack_signature=SLACK_SIGNATURE, x_slack_request_timestamp=str(SLACK_TIME))
    signed = verify("slack", SLACK_SECRET, SLACK_BODY, sent, now=SLACK_TIME + 299, tolerance=300)
    assert signed == Signed(SLACK_SIGNATURE[3:], SLACK_TIME)
    with pytest.raises(SignatureRefused, match="301 s old, beyond the tolerance of 300 s") as old:
        verify("slack", SLACK_SECRET, SLACK_BODY, sent, now=SLACK_TIME + 301, tolerance=300)
    with pytest.raises(SignatureRefused, match="61 s in the future") as future:
        verify("slack", SLACK_SECRET, SLACK_BODY, sent, now=SLACK_TIME - 61, tolerance=60)
    assert old.value.status == future.value.status == 403


def test_a_slack_timestamp_changed_without_the_secret_does_not_match() -> None:
    sent = headers(x_slack_signature=SLACK_SIGNATURE, x_slack_request_timestamp=str(SLACK_TIME + 1))
    with pytest.raises(SignatureRefused, match="does not match") as refused:
        verify("slack", SLACK_SECRET, SLACK_BODY, sent, now=SLACK_TIME, tolerance=300)
    assert refused.value.status == 401


def test_stripe_signatures_cover_the_timestamp_and_any_v1_may_match() -> None:
    now = 1_700_000_000
    header = sign_stripe("whsec_test", b'{"id": "evt_1"}', now)
    assert header.startswith(f"t={now},v1=")
    digest = header.split("v1=")[1]
    rolled = headers(stripe_signature=f"t={now},v1={'0' * 64},v0=ignored,v1={digest.upper()}")
    signed = verify("stripe", "whsec_test", b'{"id": "evt_1"}', rolled, now=now, tolerance=300)
    assert signed == Signed(digest, now)
    moved = headers(stripe_signature=header.replace(f"t={now}", f"t={now + 100}"))
    with pytest.raises(SignatureRefused, match="does not match"):
        verify("stripe", "whsec_test", b'{"id": "evt_1"}', moved, now=now, tolerance=300)
    with pytest.raises(SignatureRefused, match="does not match"):
        verify("stripe", "other", b'{"id": "evt_1"}', headers(stripe_signature=header),
               now=now, tolerance=300)  # fmt: skip


@pytest.mark.parametrize(
    "value",
    ["", "v1=abc", "t=1,t=2,v1=abc", "t=1", "t=-5,v1=ab", "t=1e9,v1=ab", "t=١٢٣,v1=ab",
     "t=9999999999999999999,v1=ab", "garbage"],
)  # fmt: skip
def test_malformed_stripe_headers_are_refused_with_a_reason(value: str) -> None:
    with pytest.raises(SignatureRefused) as refused:
        verify("stripe", "s", b"{}", headers(stripe_signature=value), now=1, tolerance=300)
    assert refused.value.status == 401 and "Stripe-Signature" in refused.value.reason


def test_the_signature_is_checked_before_the_time() -> None:
    """A stale timestamp is only reported to whoever holds a valid signature."""
    stale = headers(stripe_signature="t=1,v1=" + "0" * 64)
    with pytest.raises(SignatureRefused, match="does not match"):
        verify("stripe", "s", b"{}", stale, now=1_700_000_000, tolerance=300)


def test_github_requests_verify_to_the_digest_of_the_body() -> None:
    sent = headers(x_hub_signature_256=SIGNATURE.upper())
    signed = verify("github", SECRET, PAYLOAD, sent, now=0, tolerance=1)
    assert signed == Signed(SIGNATURE[len("sha256=") :], None)
    with pytest.raises(SignatureRefused, match="missing"):
        verify("github", SECRET, PAYLOAD, headers(), now=0, tolerance=1)
