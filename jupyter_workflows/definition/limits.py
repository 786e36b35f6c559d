"""How much a workflow file may hold: the bounds that keep loading a hostile file cheap.

Every reader of definitions (files, text, dicts) checks these before anything else looks at
the data, so the model, the graph checks and the engine only ever see a bounded tree: no
alias bombs, no cycles, no nesting that recursion cannot follow, no number that overflows.
A file over a limit is an ordinary located validation error. The README's file-format
section states the same numbers.

The parsers bound what they must while parsing (file size, YAML aliases and nesting, number
literals too long to convert); ``check_data`` checks the parsed tree (or a dict given to the
Python API) against the rest.
"""

from __future__ import annotations

import math
import re
from typing import Any

DataPath = tuple[Any, ...]
Excess = tuple[str, DataPath]  # what is beyond a limit, and where

MAX_FILE_BYTES = 2 * 1024 * 1024
"""A definition file (or text) larger than this is refused before it is parsed."""

MAX_NODES = 250_000
"""Values in one document (every mapping, list, key and scalar), YAML aliases counted as often
as they are used, so that an alias bomb is refused after the first 250,000."""

MAX_DEPTH = 64
"""Nesting of mappings and lists, the top level being 1."""

MAX_STRING_CHARS = 100_000
"""One string (a key or a value)."""

MAX_INT = 2**63 - 1
"""Integers lie in [-2**63, 2**63 - 1]; floats must be finite."""

MAX_NUMBER_CHARS = 40
"""A number literal longer than this is out of range without being converted."""

MAX_TASKS = 10_000
"""Tasks in one workflow, nested ones included."""

MAX_CONDITION_DEPTH = 32
"""Nesting of parentheses and '!' in one condition."""

MAX_PROBLEMS = 10_000
"""Problems listed for one file; the rest are counted in one last problem."""

_SURROGATE = re.compile("[\ud800-\udfff]")


class OutOfRange:
    """A number literal a parser would not hold (too long, infinite, NaN), kept as its text so
    the walk can report it where it is."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


class RepeatedKeys(dict):  # type: ignore[type-arg]
    """A mapping in which a key was written more than once (the parser kept the last)."""

    repeated: list[Any]


def too_many(aliases: bool) -> str:
    expanded = " once YAML aliases are expanded" if aliases else ""
    return f"too large: more than {MAX_NODES:,} values{expanded} (the limit of a workflow file)"


TOO_DEEP = f"nested too deep: more than {MAX_DEPTH} levels of mappings and lists"
OUT_OF_RANGE = "integers must lie between -2**63 and 2**63-1 and numbers be finite"


def clip(text: str, width: int = 40) -> str:
    """``text`` shortened to about ``width`` characters for a message."""
    return text if len(text) <= width else text[: width - 3] + "..."


def scalar_problem(value: Any) -> str | None:
    """Why one parsed value is out of bounds, or None."""
    if isinstance(value, str):
        if len(value) > MAX_STRING_CHARS:
            return (
                f"text of {len(value):,} characters; at most {MAX_STRING_CHARS:,} characters "
                "are allowed"
            )
        if "\x00" in value:
            return "text contains a NUL character (\\u0000)"
        if not value.isascii() and (bad := _SURROGATE.search(value)):
            code = ord(bad.group())
            return f"text contains an unpaired surrogate (\\u{code:04x}): not valid Unicode"
        return None
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        if -MAX_INT - 1 <= value <= MAX_INT:
            return None
        digits = int(value.bit_length() * math.log10(2)) + 1
        return f"number out of range: an integer of about {digits:,} digits; {OUT_OF_RANGE}"
    if isinstance(value, float):
        return None if math.isfinite(value) else f"number out of range: {value}; {OUT_OF_RANGE}"
    if isinstance(value, OutOfRange):
        return f"number out of range: {clip(value.text, 24)}; {OUT_OF_RANGE}"
    return None


def check_data(data: Any) -> list[Excess]:
    """What in ``data`` is beyond the limits, each with its data path (the walk stops at a
    structural excess: too many values, too deep, a cycle); empty when it is within them.

    Iterative, so neither depth nor size can exhaust the stack; a value shared by several
    places (Python objects given to the API) is counted at each. Scalars are checked where
    their container is read (the common one, short text, at the cost of three tests).
    """
    excess: list[Excess] = []
    count = 1
    active: set[int] = set()  # containers on the current path: one seen again is a cycle
    stack: list[tuple[Any, DataPath, int]] = [(data, (), 1)]
    if not isinstance(data, (dict, list, tuple)):
        problem = scalar_problem(data)
        return [(problem, ())] if problem else []
    while stack:
        value, path, depth = stack.pop()
        if value is _LEAVE:  # leaving a container: ``depth`` holds its id
            active.discard(depth)
            continue
        if depth > MAX_DEPTH:
            return [*excess, (TOO_DEEP, path)]
        if id(value) in active:
            return [*excess, ("a value contains itself (a cycle)", path)]
        active.add(id(value))
        stack.append((_LEAVE, path, id(value)))
        mapping = isinstance(value, dict)
        if mapping:
            count += 2 * len(value)
            for key in getattr(value, "repeated", ()):
                excess.append((f"duplicate key '{_show_key(key)}'", (*path, key)))
            pairs: Any = value.items()
        else:
            count += len(value)
            pairs = enumerate(value)
        if count > MAX_NODES:
            return [*excess, (too_many(False), path)]
        for key, item in pairs:
            if mapping and _odd(key) and (problem := scalar_problem(key)):
                excess.append((f"key: {problem}", (*path, key)))
            if isinstance(item, (dict, list, tuple)):
                stack.append((item, (*path, key), depth + 1))
            elif _odd(item) and (problem := scalar_problem(item)):
                excess.append((problem, (*path, key)))
        if len(excess) > MAX_PROBLEMS:
            break
    return excess


_LEAVE = object()


def _odd(value: Any) -> bool:
    """Not obviously within the limits: anything but short plain text, booleans and None."""
    if type(value) is str:
        return len(value) > 1000 or not value.isascii() or "\x00" in value
    return value is not None and type(value) is not bool


def _show_key(key: Any) -> str:
    return clip(key) if isinstance(key, str) else str(key)
