"""The masker: every form of a secret becomes ***, in text, values, events and streams."""

from __future__ import annotations

import base64
import json
import os
from urllib.parse import quote, quote_plus

import pytest

from jupyter_workflows.execution.events import OutputLine, TaskEnded
from jupyter_workflows.execution.masking import MASK, Masker

SECRET = 's3cr"et/pa ss+wörd\\x'


@pytest.fixture
def masker() -> Masker:
    return Masker([SECRET])


@pytest.mark.parametrize(
    "shown",
    [
        SECRET,
        json.dumps(SECRET)[1:-1],
        json.dumps(SECRET, ensure_ascii=False)[1:-1],
        json.dumps(json.dumps(SECRET)[1:-1])[1:-1],  # JSON in a JSON string
        repr(SECRET)[1:-1],
        quote(SECRET, safe=""),
        quote(SECRET),
        quote_plus(SECRET),
        quote(SECRET, safe="").lower(),
        base64.b64encode(SECRET.encode()).decode(),
        base64.urlsafe_b64encode(SECRET.encode()).decode().rstrip("="),
    ],
)
def test_each_form_is_masked(masker, shown):
    assert masker.text(f"before {shown} after") == f"before {MASK} after"


@pytest.mark.parametrize("prefix", [b"", b"u", b"us", b"user:", b"Basic x"])
def test_base64_of_longer_data_hides_the_value_at_any_alignment(masker, prefix):
    encoded = base64.b64encode(prefix + SECRET.encode() + b"!").decode()
    masked = masker.text(encoded)
    assert MASK in masked
    # What is left cannot be decoded back into (a part of) the value: at most the 2
    # characters either side of the masked core, which carry bits of neighbouring bytes.
    left, right = masked.split(MASK)
    assert len(left) <= len(base64.b64encode(prefix)) + 1 and len(right) <= 6


def test_short_values_are_not_masked_and_are_named():
    masker, short = Masker.build({"PIN": "123", "EMPTY": "", "TOKEN": "long-enough"})
    assert short == ["PIN"]
    assert masker.text("123 long-enough") == f"123 {MASK}"
    assert Masker.build({"PIN": "123"})[0] is None  # nothing to mask: no masker at all


def test_values_are_copied_not_changed(masker):
    original = {"k": [SECRET, 1, {"deep": f"x{SECRET}"}], SECRET: "key too"}
    masked = masker.value(original)
    assert masked == {"k": [MASK, 1, {"deep": f"x{MASK}"}], MASK: "key too"}
    assert original["k"][0] == SECRET  # the caller's data (a task's result) is untouched
    untouched = {"a": ["b", 2]}
    assert masker.value(untouched) is untouched


def test_events_are_masked_and_ids_kept(masker):
    line = OutputLine(execution_id="e", task_id="t", attempt=1, stream="stdout", line=SECRET)
    assert masker.event(line).line == MASK and line.line == SECRET
    ended = TaskEnded(
        execution_id="e", task_id="t", status="failed", error=f"bad {SECRET}",
        result={"echo": SECRET}, outputs={"o": SECRET},
    )  # fmt: skip
    masked = masker.event(ended)
    assert (masked.error, masked.result, masked.outputs) == (
        f"bad {MASK}", {"echo": MASK}, {"o": MASK}
    )  # fmt: skip
    plain = OutputLine(execution_id="e", task_id="t", attempt=1, stream="stdout", line="ok")
    assert masker.event(plain) is plain


def test_a_value_split_across_chunks_is_caught(masker):
    stream = masker.stream()
    pieces = [
        stream.feed("token: " + SECRET[:5]),
        stream.feed(SECRET[5:9]),
        stream.feed(SECRET[9:] + " end\n"),
    ]
    assert "".join(pieces) + stream.flush() == f"token: {MASK} end\n"
    assert pieces[0] == "token: "  # the start of the secret was held back, nothing more


def test_a_stream_passes_ordinary_text_at_once(masker):
    stream = masker.stream()
    assert stream.feed("hello world\n") == "hello world\n"
    assert stream.feed("almost s3c") == "almost "
    assert stream.flush() == "s3c"  # the end of the stream: what was held goes out


def test_many_chunks_of_random_text_lose_nothing(masker):
    data = os.urandom(4000).hex() + SECRET + os.urandom(100).hex()
    stream = masker.stream()
    out = "".join(stream.feed(data[i : i + 7]) for i in range(0, len(data), 7)) + stream.flush()
    assert out == data.replace(SECRET, MASK)


def test_holds_mask_looks_through_nested_values_and_keys() -> None:
    from jupyter_workflows.execution.masking import holds_mask

    assert holds_mask("x-***") and holds_mask({"a": ["ok", {"b": "***"}]})
    assert holds_mask({"***": 1}) and holds_mask(("a", "b***"))
    assert not holds_mask({"a": ["ok", 3, None, {"b": "**"}]}) and not holds_mask(42)
