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

DataPath = tuple[Any, ...]
Position = tuple[int, int]
ERROR = "error"
WARNING = "warning"

_WS = re.compile(r"[ \t\n\r]*")
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_SCALAR = re.compile(r"[^\s,\]}]+")


class Locator:
    """Where each data path sits in the source text; ``line_offset`` shifts every line."""

    def __init__(self, text: str | None = None, fmt: str | None = None, line_offset: int = 0):
        self._text = text
        self._fmt = fmt
        self._line_offset = line_offset
        self._positions: dict[DataPath, Position] | None = None

    def position(self, path: DataPath) -> Position | None:
        """(line, column) of ``path``, or of its nearest ancestor that has one."""
        positions = self._index()
        path = tuple(path)
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


def _skip(text: str, pos: int) -> int:
    match = _WS.match(text, pos)
    return match.end() if match else pos


def _scan_value(text: str, pos: int, path: DataPath, offsets: dict[DataPath, int]) -> int:
    """Record positions below ``path`` for the value at ``pos``; return the offset after it."""
    char = text[pos]
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
        key = json.loads(match.group())
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


def yaml_positions(text: str) -> dict[DataPath, Position]:
    """Positions of every path in a YAML text, from the composed node tree."""
    import yaml  # only on the error path of a YAML file

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    root = yaml.compose(text, Loader=loader)
    positions: dict[DataPath, Position] = {}
    if root is not None:
        positions[()] = (root.start_mark.line + 1, root.start_mark.column + 1)
        _walk_node(root, (), positions, set())
    return positions


def _walk_node(
    node: Any, path: DataPath, positions: dict[DataPath, Position], seen: set[int]
) -> None:
    import yaml

    if id(node) in seen:  # an alias back into its own anchor
        return
    seen = seen | {id(node)}
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = _yaml_key(key_node)
            mark = key_node.start_mark
            positions[path + (key,)] = (mark.line + 1, mark.column + 1)
            _walk_node(value_node, (*path, key), positions, seen)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            mark = item.start_mark
            positions[path + (index,)] = (mark.line + 1, mark.column + 1)
            _walk_node(item, (*path, index), positions, seen)


def _yaml_key(node: Any) -> Any:
    """The key as ``yaml.safe_load`` builds it, for the scalar keys a workflow uses."""
    value = node.value
    if not isinstance(value, str) or node.tag.endswith(":str"):
        return value
    if node.tag.endswith(":int"):
        try:
            return int(value.replace("_", ""), 0)
        except ValueError:
            return value
    if node.tag.endswith(":bool"):
        return value.lower() in ("yes", "true", "on", "y")
    return value


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
        if key in ("then", "else", "on_failure") and isinstance(child, dict):
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
        message,
        file=source,
        line=where[0] if where else None,
        column=where[1] if where else None,
        task_id=task_id,
        field=field_name,
        severity=finding.severity,
    )
