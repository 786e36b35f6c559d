"""Masking: secret values become ``***`` in everything a run shows or records.

A ``Masker`` is built once per run from the resolved secret values (``Masker.build``) and the
engine applies it to every event before any sink sees it (``Masker.event``): live output, the
journal and so the DuckDB index, the ``Execution`` record, renderers, the widget, the panel
and the alerts read from the store. Task types that see raw output chunks (a process's pipes)
mask them as they arrive with a ``StreamMasker``, which holds back the end of a chunk that
could be the start of a secret, so a value written in two pieces is still caught.

Each value is masked in the forms it takes in text: as is, JSON-escaped (also twice), as a
Python string literal shows it, URL-encoded (``quote``, ``quote_plus``, lower-case hex too)
and base64-encoded (standard and URL-safe alphabets, with and without padding, and the part
that stays the same when the value is encoded inside longer data). Values shorter than
``MIN_LENGTH`` characters are not masked: masking "1" or "no" would garble ordinary text and
hide nothing; ``Masker.build`` names them so the caller can warn.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote, quote_plus

from .events import Event

__all__ = ["MASK", "MIN_LENGTH", "Masker", "StreamMasker", "forms_of", "holds_mask"]

MASK = "***"
MIN_LENGTH = 4
# Event fields that identify rather than describe: never rewritten (a masked id would tear
# the record apart, and no id is made of a secret).
_KEEP = frozenset({"execution_id", "task_id", "parent", "at", "seq"})
# A base64 fragment shorter than this could occur by chance in unrelated base64 text.
_MIN_B64_CORE = 8


def holds_mask(value: Any) -> bool:
    """Whether a recorded value holds the mask (in a string of it, a key included): where a run
    recorded a secret's value, the record is not that value, and running with it again (a
    resume's parameters) would be wrong. A value that held "***" itself counts too: the
    record cannot tell the two apart."""
    if isinstance(value, str):
        return MASK in value
    if isinstance(value, dict):
        return any(holds_mask(k) or holds_mask(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return any(holds_mask(item) for item in value)
    return False


def forms_of(value: str) -> set[str]:
    """Every text form of ``value`` that is masked (``value`` itself included)."""
    found = {value}
    escaped = json.dumps(value)[1:-1]
    found |= {escaped, json.dumps(value, ensure_ascii=False)[1:-1], json.dumps(escaped)[1:-1]}
    found.add(repr(value)[1:-1])
    # How papermill's translators write a string into an injected-parameters cell.
    found.add(value.encode("unicode_escape").decode("ascii").replace('"', r"\""))
    for encoded in (
        quote(value, safe="", errors="replace"),
        quote(value, errors="replace"),
        quote_plus(value, safe="", errors="replace"),
        quote_plus(value, errors="replace"),
    ):
        found.add(encoded)
        found.add(re.sub(r"%[0-9A-F]{2}", lambda m: m.group().lower(), encoded))
    found |= _base64_forms(value.encode("utf-8", errors="replace"))
    return {form for form in found if len(form) >= MIN_LENGTH}


def _base64_forms(raw: bytes) -> set[str]:
    """The value base64-encoded alone, and the characters fixed by its bytes alone when it is
    encoded after 0, 1 or 2 other bytes (so inside longer data, at any alignment)."""
    found = set()
    for encode in (base64.b64encode, base64.urlsafe_b64encode):
        whole = encode(raw).decode("ascii")
        found |= {whole, whole.rstrip("=")}
        for offset in range(3):
            text = encode(b"\0" * offset + raw).decode("ascii")
            start = -(-8 * offset // 6)  # the first character without a bit of the prefix
            end = (8 * offset + 8 * len(raw)) // 6  # past the last one without padding bits
            if end - start >= _MIN_B64_CORE:
                found.add(text[start:end])
    return found


class Masker:
    """Replaces every form of a set of secret values in text, nested values and events."""

    def __init__(self, values: Iterable[str]):
        forms: set[str] = set()
        for value in values:
            if isinstance(value, str) and len(value) >= MIN_LENGTH:
                forms |= forms_of(value)
        # Longest first, so a value is masked whole rather than around a shorter one.
        self.forms = sorted(forms, key=lambda f: (-len(f), f))
        self._pattern = (
            re.compile("|".join(re.escape(form) for form in self.forms)) if forms else None
        )

    @classmethod
    def build(cls, secrets: Mapping[str, str]) -> tuple[Masker | None, list[str]]:
        """The masker for named values (None when nothing is to be masked), and the names
        whose values are too short to be masked (non-empty ones under ``MIN_LENGTH``)."""
        short = sorted(name for name, value in secrets.items() if 0 < len(value) < MIN_LENGTH)
        masker = cls(secrets.values())
        return (masker if masker else None), short

    def __bool__(self) -> bool:
        return self._pattern is not None

    def text(self, text: str) -> str:
        if self._pattern is None or not text:
            return text
        return self._pattern.sub(MASK, text)

    def value(self, value: Any) -> Any:
        """``value`` with every string in it (dict keys too) masked. Copies what changes and
        returns the very object when nothing does: the caller's data is never modified."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            items = [(self.value(k), self.value(v)) for k, v in value.items()]
            if all(a is k and b is v for (a, b), (k, v) in zip(items, value.items(), strict=True)):
                return value
            return dict(items)
        if isinstance(value, (list, tuple)):
            masked = [self.value(item) for item in value]
            if all(a is b for a, b in zip(masked, value, strict=True)):
                return value
            return masked if isinstance(value, list) else tuple(masked)
        return value

    def changed_keys(self, mapping: Mapping[str, Any]) -> list[str]:
        """The keys of ``mapping`` whose values masking changes (they hold a secret's value)."""
        return [key for key, value in mapping.items() if self.value(value) is not value]

    def event(self, event: Event) -> Event:
        """``event`` with its text masked: the same object when there was nothing to mask."""
        changes = {}
        for name in event.__dataclass_fields__:
            if name in _KEEP:
                continue
            old = getattr(event, name)
            if isinstance(old, (str, dict, list, tuple)):
                new = self.value(old)
                if new is not old:
                    changes[name] = new
        return dataclasses.replace(event, **changes) if changes else event

    def stream(self) -> StreamMasker:
        """A masker for one stream of text arriving in chunks."""
        return StreamMasker(self)

    def held_tail(self, text: str) -> int:
        """How many characters at the end of ``text`` could begin a secret's form."""
        held = 0
        for form in self.forms:
            # The earliest place in the last len(form) - 1 characters where the rest of the
            # text is how ``form`` begins: the longest such tail.
            position = text.find(form[0], max(0, len(text) - len(form) + 1))
            while position != -1 and len(text) - position > held:
                if form.startswith(text[position:]):
                    held = len(text) - position
                    break
                position = text.find(form[0], position + 1)
        return held


class StreamMasker:
    """Masks one stream written in chunks (a pipe): ``feed`` returns what can be passed on,
    keeping back a tail that may be the first part of a secret until the next chunk says,
    and ``flush`` the rest at the end."""

    def __init__(self, masker: Masker):
        self.masker = masker
        self._tail = ""

    def feed(self, chunk: str) -> str:
        text = self.masker.text(self._tail + chunk)
        held = self.masker.held_tail(text)
        self._tail = text[len(text) - held :] if held else ""
        return text[: len(text) - held]

    def flush(self) -> str:
        rest, self._tail = self._tail, ""
        return self.masker.text(rest)
