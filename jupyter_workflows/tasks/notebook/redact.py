"""``${secret.*}`` values never reach a log line, an error, an output or the saved notebook.

A secret passed as a parameter has to be in the injected cell the kernel runs, but the
notebook written afterwards says ``***`` there (in the forms it takes in Python source too),
and so do outputs that print it, the task's log, its error and the values it recorded. The
forms are the run's (``execution.masking``): encoded ones included.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ...execution.masking import MASK, Masker

__all__ = ["MASK", "Redactor"]


class Redactor:
    """Replaces every form of the given secrets in text and, in place, in nested values."""

    def __init__(self, secrets: Iterable[str]):
        self.masker = Masker(secrets)

    def __bool__(self) -> bool:
        return bool(self.masker)

    def text(self, text: str) -> str:
        return self.masker.text(text)

    def value(self, value: Any) -> Any:
        """``value`` with every string in it (dict keys too) masked, in place for dicts/lists
        (a notebook node stays the node it was)."""
        if not self.masker:
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
