"""Durations as workflow files write them: bare numbers in a field's own unit, or "500ms", "10s"."""

from __future__ import annotations

import math
import re

_UNITS = {"ms": 0.001, "s": 1.0, "sec": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0, "d": 86400.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|sec|min|s|m|h|d)")
_WHOLE = re.compile(r"^\s*(?:\d+(?:\.\d+)?\s*(?:ms|sec|min|s|m|h|d)\s*)+$")

UNIT_SECONDS = "s"
UNIT_MILLISECONDS = "ms"


def parse_duration(value: object, *, unit: str) -> float:
    """Return seconds. A bare number (or numeric string) is in ``unit``; "1m30s" style strings
    carry their own units. Raises ValueError with the accepted forms."""
    if isinstance(value, bool):
        raise ValueError('expected a duration such as 30, "500ms", "10s" or "5m", not a boolean')
    if isinstance(value, (int, float)):
        try:
            seconds = float(value) * _UNITS[unit]
        except OverflowError:  # an int beyond any float
            raise ValueError("a duration must be a finite number: this one is too large") from None
    elif isinstance(value, str):
        text = value.strip().lower()
        try:
            seconds = float(text) * _UNITS[unit]
        except ValueError:
            if not _WHOLE.match(text):
                raise ValueError(
                    f"'{value[:40]}' is not a duration: write a number ({_unit_name(unit)}) "
                    'or a string with units such as "500ms", "10s", "5m", "1h30m"'
                ) from None
            seconds = sum(float(n) * _UNITS[u] for n, u in _PART.findall(text))
    else:
        raise ValueError(f"expected a duration (number or string), got {type(value).__name__}")
    if not math.isfinite(seconds):  # "nan", "inf", "1e999", 400 digits
        raise ValueError(f"{str(value)[:40]!r} is not a finite duration")
    if seconds < 0:
        raise ValueError("a duration cannot be negative")
    return seconds


def _unit_name(unit: str) -> str:
    return "seconds" if unit == UNIT_SECONDS else "milliseconds"


def format_duration(seconds: float | None) -> str:
    """Short human form: 850ms, 12.3s, 4m05s, 2h03m."""
    if seconds is None:
        return "-"
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def format_size(size: int) -> str:
    """Bytes in a short human form: 512 B, 3.4 KiB, 12.0 MiB."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"
