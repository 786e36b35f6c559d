"""Where a problem is: data paths such as ``("tasks", 3, "command")`` to line, column, task, field.

Checks report ``Finding``s (a message and a data path); ``to_problem`` locates one. Positions
are computed on first use only: a file that validates never pays for them. JSON positions come
from a small scanner (the stdlib parser keeps none), YAML positions from the node marks of
``yaml.compose``. A path inside a mapping points at its key, a list item at the item itself.
Lines and columns are 1-based.
"""

from __future__ import annotations

import bisect
import json
import re
from dataclasses import dataclass
from typing import Any

from ..errors import Problem
from .limits import MAX_DEPTH

DataPath = tuple[Any, ...]
Position = tuple[int, int]
ERROR = "error"
WARNING = "warning"

_WS = re.compile(r"[ \t\n\r]*")
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_SCALAR = re.compile(r"[^\s,\]}]+")
_BRACKETS = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]')
# C0 and C1 controls, zero-width and direction marks, line and paragraph separators, bidi
# embeddings and isolates, the BOM, surrogates
_UNPRINTABLE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2066-\u2069\ufeff\ud800-\udfff]"
)
MAX_MESSAGE_CHARS = 500


class Locator:
    """Where each data path sits in the source text; ``line_offset`` shifts every line."""

    _LOOKUPS = 20  # JSON paths found one by one before indexing the whole text

    def __init__(
        self,
        text: str | None = None,
        fmt: str | None = None,
        line_offset: int = 0,
        positions: dict[DataPath, Position] | None = None,
    ):
        self._text = text
        self._fmt = fmt
        self._line_offset = line_offset
        self._positions = positions  # None: found from the text when first needed
        self._lookups = 0
        self._ends: dict[int, int] = {}

    def position(self, path: DataPath) -> Position | None:
        """(line, column) of ``path``, or of its nearest ancestor that has one."""
        path = tuple(path)
        few = self._lookups < self._LOOKUPS  # a few problems: no need to index everything
        if self._positions is None and self._fmt == "json" and self._text is not None and few:
            self._lookups += 1
            try:
                line, column = json_position(self._text, path, self._ends)
            except Exception:  # positions are a courtesy: never let them hide the problem
                return None
            return line + self._line_offset, column
        positions = self._index()
        while True:
            found = positions.get(path)
            if found is not None:
                return found[0] + self._line_offset, found[1]
            if not path:
                return None
            path = path[:-1]

    def line_of(self, path: DataPath) -> int | None:
        """Line of ``path`` (or of its nearest ancestor that has one); None without a text."""
        found = self.position(path)
        return found[0] if found else None

    def _index(self) -> dict[DataPath, Position]:
        if self._positions is None:
            self._positions = {}
            if self._text is not None:
                try:
                    if self._fmt == "json":
                        self._positions = json_positions(self._text)
                    else:
                        self._positions = yaml_positions(self._text)
                except Exception:  # positions are a courtesy: never let them hide the problem
                    self._positions = {}
        return self._positions


def json_positions(text: str) -> dict[DataPath, Position]:
    """Positions of every path in a JSON text that ``json.loads`` accepts."""
    starts = [0] + [m.end() for m in re.finditer("\n", text)]
    offsets: dict[DataPath, int] = {}
    _scan_value(text, _skip(text, 0), (), offsets)
    if () not in offsets:
        offsets[()] = _skip(text, 0)
    result = {}
    for path, offset in offsets.items():
        line = bisect.bisect_right(starts, offset)
        result[path] = (line, offset - starts[line - 1] + 1)
    return result


def json_position(text: str, path: DataPath, ends: dict[int, int] | None = None) -> Position:
    """The position of ``path`` (or its nearest ancestor) in a JSON text, found by walking
    down the path and skipping the values beside it; ``ends`` (offset of a value -> offset
    after it) is kept between calls, so no value is skipped twice."""
    ends = {} if ends is None else ends
    pos = _skip(text, 0)
    found = pos
    for part in path:
        if text[pos] == "{":
            at = _find_key(text, pos, part, ends)
        elif text[pos] == "[" and isinstance(part, int):
            at = _find_item(text, pos, part, ends)
        else:
            at = None
        if at is None:
            break
        found, pos = at
    line = text.count("\n", 0, found) + 1
    return line, found - (text.rfind("\n", 0, found) + 1) + 1


def _find_key(text: str, pos: int, key: Any, ends: dict[int, int]) -> tuple[int, int] | None:
    """(offset of the key, offset of its value) in the object at ``pos``; the last one of
    repeated keys, as ``json.loads`` keeps it."""
    found = None
    pos = _skip(text, pos + 1)
    while text[pos] != "}":
        match = _STRING.match(text, pos)
        if match is None:
            return found
        value = _skip(text, _skip(text, match.end()) + 1)
        word = match.group()
        if (json.loads(word) if "\\" in word else word[1:-1]) == key:
            found = (pos, value)
        pos = _skip(text, _after_value(text, value, ends))
        if text[pos] == ",":
            pos = _skip(text, pos + 1)
    return found


def _find_item(text: str, pos: int, index: int, ends: dict[int, int]) -> tuple[int, int] | None:
    pos = _skip(text, pos + 1)
    for _ in range(index):
        if text[pos] == "]":
            return None
        pos = _skip(text, _after_value(text, pos, ends))
        if text[pos] == ",":
            pos = _skip(text, pos + 1)
    return None if text[pos] == "]" else (pos, pos)


def _after_value(text: str, pos: int, ends: dict[int, int]) -> int:
    end = ends.get(pos)
    if end is None:
        if text[pos] in "[{":
            end = _after_nested(text, pos)
        else:
            match = (_STRING if text[pos] == '"' else _SCALAR).match(text, pos)
            if match is None:
                raise ValueError(f"unexpected {text[pos]!r} at offset {pos}")
            end = match.end()
        ends[pos] = end
    return end


def _skip(text: str, pos: int) -> int:
    match = _WS.match(text, pos)
    return match.end() if match else pos


def _scan_value(text: str, pos: int, path: DataPath, offsets: dict[DataPath, int]) -> int:
    """Record positions below ``path`` for the value at ``pos``; return the offset after it."""
    char = text[pos]
    if len(path) > MAX_DEPTH and char in "[{":  # beyond the limit: skipped, not recursed into
        return _after_nested(text, pos)
    if char == "{":
        return _scan_object(text, pos, path, offsets)
    if char == "[":
        return _scan_array(text, pos, path, offsets)
    match = (_STRING if char == '"' else _SCALAR).match(text, pos)
    if match is None:  # cannot happen for text json.loads accepted
        raise ValueError(f"unexpected {char!r} at offset {pos}")
    return match.end()


def _scan_object(text: str, pos: int, path: DataPath, offsets: dict[DataPath, int]) -> int:
    pos = _skip(text, pos + 1)
    while text[pos] != "}":
        match = _STRING.match(text, pos)
        if match is None:
            raise ValueError(f"expected a key at offset {pos}")
        word = match.group()
        key = json.loads(word) if "\\" in word else word[1:-1]
        offsets[path + (key,)] = pos  # a later duplicate key wins, as in json.loads
        pos = _skip(text, match.end())
        pos = _skip(text, pos + 1)  # the colon
        pos = _skip(text, _scan_value(text, pos, (*path, key), offsets))
        if text[pos] == ",":
            pos = _skip(text, pos + 1)
    return pos + 1


def _scan_array(text: str, pos: int, path: DataPath, offsets: dict[DataPath, int]) -> int:
    pos = _skip(text, pos + 1)
    index = 0
    while text[pos] != "]":
        offsets[path + (index,)] = pos
        pos = _skip(text, _scan_value(text, pos, (*path, index), offsets))
        if text[pos] == ",":
            pos = _skip(text, pos + 1)
        index += 1
    return pos + 1


def _after_nested(text: str, pos: int) -> int:
    """The offset after the array or object starting at ``pos`` (iteratively)."""
    depth = 0
    for match in _BRACKETS.finditer(text, pos):
        char = match.group()
        if char in "[{":
            depth += 1
        elif char in "]}":
            depth -= 1
            if depth == 0:
                return match.end()
    raise ValueError(f"unclosed value at offset {pos}")


def too_deep_offset(text: str, limit: int) -> int | None:
    """Offset of the first JSON bracket nested deeper than ``limit``, strings skipped."""
    depth = 0
    for match in _BRACKETS.finditer(text):
        char = match.group()
        if char in "[{":
            depth += 1
            if depth > limit:
                return match.start()
        elif char in "]}":
            depth -= 1
    return None


def yaml_positions(text: str) -> dict[DataPath, Position]:
    """Positions of every path in a YAML text, from the parser's events."""
    from .yaml_reader import positions  # only on the error path of a YAML file

    return positions(text)


@dataclass(frozen=True)
class Finding:
    """One problem before it is located: ``also`` is another place the message refers to."""

    message: str
    path: DataPath
    severity: str = ERROR
    also: DataPath | None = None


def task_id_of(node: Any) -> str | None:
    value = node.get("id") if isinstance(node, dict) else None
    return value if isinstance(value, str) and value else None


def describe(data: Any, path: DataPath) -> tuple[str | None, str | None]:
    """(task id, field) for a data path: the innermost task with an id, and the rest dotted."""
    if len(path) < 2 or path[0] != "tasks" or not isinstance(data, dict):
        return None, dotted(path)
    tasks = data.get("tasks")
    top = path[1]
    if not isinstance(tasks, list) or not isinstance(top, int) or not 0 <= top < len(tasks):
        return None, dotted(path)
    node, depth = tasks[top], 2
    task_id, start = (task_id_of(node), 2) if task_id_of(node) else (None, 0)
    while isinstance(node, dict) and depth < len(path):
        key, child = path[depth], node.get(path[depth])
        if key in ("then", "else", "task", "on_failure", "on_success") and isinstance(child, dict):
            node, depth = child, depth + 1
        elif key == "tasks" and isinstance(child, list) and depth + 1 < len(path):
            at = path[depth + 1]
            if not (isinstance(at, int) and 0 <= at < len(child) and isinstance(child[at], dict)):
                break
            node, depth = child[at], depth + 2
        else:
            break
        if task_id_of(node):
            task_id, start = task_id_of(node), depth
    return task_id, dotted(path[start:])


def dotted(path: DataPath) -> str | None:
    """``("environment", "TOKEN")`` -> ``environment.TOKEN``; indices as ``tasks[0]``."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or None


def to_problem(finding: Finding, data: Any, locator: Locator, source: str) -> Problem:
    """The located, user-facing form of a finding."""
    task_id, field_name = describe(data, finding.path)
    where = locator.position(finding.path)
    message = finding.message
    if finding.also is not None:
        line = locator.line_of(finding.also)
        if line is not None:
            message += f" (first used at line {line})"
    return Problem(
        printable(message),
        file=source,
        line=where[0] if where else None,
        column=where[1] if where else None,
        task_id=printable(task_id, 80) if task_id else task_id,
        field=printable(field_name, 120) if field_name else field_name,
        severity=finding.severity,
    )


def printable(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    """``text`` safe for a terminal: control, bidi and surrogate characters escaped (a file
    cannot clear the screen or reorder a line through an error message), and its middle cut
    when it is longer than ``limit``."""
    text = _UNPRINTABLE.sub(lambda m: repr(m.group())[1:-1], text)
    if len(text) > limit:
        half = limit // 2 - 3
        text = text[:half] + " ... " + text[-half:]
    return text
