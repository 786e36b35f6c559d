"""``${secret.*}`` values never reach a log line, an error, an output or the saved notebook.

A secret passed as a parameter has to be in the injected cell the kernel runs, but the
notebook written afterwards says ``***`` there (in the forms it takes in Python source too),
and so do outputs that print it, the task's log, its error and the values it recorded.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

MASK = "***"


class Redactor:
    """Replaces every form of the given secrets in text and in nested values."""

    def __init__(self, secrets: Iterable[str]):
        forms = set()
        for secret in secrets:
            if secret:
                forms.add(secret)
                # How papermill's translator writes it into the injected cell, how JSON text
                # (a record's summary) and a repr (a printed dict) show it.
                forms.add(secret.encode("unicode_escape").decode("utf-8").replace('"', r"\""))
                forms.add(json.dumps(secret)[1:-1])
                forms.add(json.dumps(secret, ensure_ascii=False)[1:-1])
                forms.add(repr(secret)[1:-1])
        self.forms = sorted(forms, key=len, reverse=True)

    def __bool__(self) -> bool:
        return bool(self.forms)

    def text(self, text: str) -> str:
        for form in self.forms:
            text = text.replace(form, MASK)
        return text

    def value(self, value: Any) -> Any:
        """``value`` with every string in it (dict keys too) masked, in place for dicts/lists."""
        if not self.forms:
            return value
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            items = [(self.value(k), self.value(v)) for k, v in value.items()]
            value.clear()
            value.update(items)
        elif isinstance(value, list):
            value[:] = [self.value(item) for item in value]
        return value
