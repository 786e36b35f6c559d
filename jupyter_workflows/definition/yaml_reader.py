"""YAML to data, bounded: the parser's events turned into dicts and lists under the limits.

PyYAML's own loader composes a node graph and constructs it, expanding nothing: a 400-byte
alias bomb becomes a small shared structure that every consumer then walks billions of times,
an alias to its own anchor becomes a cycle, and a merge key (``<<``) copies pairs for real.
Here the events are counted as they come, aliases weighing what they stand for, so a document
is refused as soon as it holds more than ``MAX_NODES`` values or nests deeper than
``MAX_DEPTH``, and an alias inside its own anchor is an error. Scalars are resolved as
``yaml.safe_load`` resolves them (YAML 1.1: ``yes`` is true, ``1:30`` is 90); a tag outside
YAML's standard scalar types is refused, never constructed.

``read`` returns the data and what in it is beyond the limits (values too long, numbers out
of range, repeated keys: ``limits.scalar_problem``, with their data paths); ``positions``
the line and column of every data path (for error messages), from the same walk. Both raise
``YamlProblem`` with the place of a problem that stops the reading.
"""

from __future__ import annotations

from typing import Any

import yaml

from .limits import (
    MAX_DEPTH,
    MAX_INT,
    MAX_NODES,
    MAX_NUMBER_CHARS,
    MAX_PROBLEMS,
    TOO_DEEP,
    DataPath,
    Excess,
    OutOfRange,
    RepeatedKeys,
    scalar_problem,
    too_many,
)

Position = tuple[int, int]

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_CORE = "tag:yaml.org,2002:"
_STR, _INT, _MAP, _SEQ, _MERGE = (_CORE + t for t in ("str", "int", "map", "seq", "merge"))
_BOOL, _NULL = _CORE + "bool", _CORE + "null"
_SCALARS = {_CORE + t for t in ("str", "int", "float", "bool", "null", "timestamp", "binary")}
_NO_KEY = object()
# The implicit types of plain scalars (``true``, ``12``, ``~``...) by first character, as
# ``yaml.SafeLoader`` resolves them (SafeLoader has no wildcard or path resolvers).
_IMPLICIT: dict[str, list[tuple[str, Any]]] = dict(_Loader.yaml_implicit_resolvers)


class YamlProblem(Exception):
    """Why the text cannot be read, and where (0-based line and column, as in YAML marks)."""

    def __init__(self, message: str, mark: Any) -> None:
        super().__init__(message)
        self.message = message
        self.line = mark.line if mark is not None else None
        self.column = mark.column if mark is not None else None


class _MergeKey:
    """A ``<<`` key: the mapping (or list of mappings) it names is merged in."""


_MERGE_KEY = _MergeKey()


class _Frame:
    """A mapping or list being read."""

    __slots__ = (
        "anchor", "height", "is_list", "key", "key_mark", "last", "mark", "merges", "path",
        "start", "value",
    )  # fmt: skip

    def __init__(self, value: Any, path: DataPath, anchor: str | None, start: int, mark: Any):
        self.value = value
        self.is_list = isinstance(value, list)
        self.path = path
        self.anchor = anchor
        self.start = start  # values counted before this one
        self.mark = mark
        self.height = 1
        self.key: Any = _NO_KEY
        self.key_mark: Any = None
        self.last: Any = None  # the key stored last
        self.merges: list[dict[Any, Any]] = []


class _Reader:
    def __init__(self, text: str, record: bool) -> None:
        self.loader = _Loader(text)
        self.positions: dict[DataPath, Position] | None = {} if record else None
        self.anchors: dict[str, tuple[Any, int, int] | None] = {}  # None: not complete yet
        self.stack: list[_Frame] = []
        self.count = 0
        self.aliased = False
        self.root: Any = None
        self.excess: list[Excess] = []
        self.documents = 0

    def read(self) -> Any:
        handlers = {
            yaml.ScalarEvent: self.scalar,
            yaml.MappingStartEvent: self.start,
            yaml.SequenceStartEvent: self.start,
            yaml.MappingEndEvent: self.end,
            yaml.SequenceEndEvent: self.end,
            yaml.AliasEvent: self.alias,
            yaml.DocumentStartEvent: self.document,
        }
        get_event = self.loader.get_event
        try:
            while True:
                event = get_event()
                handler = handlers.get(type(event))
                if handler is not None:
                    handler(event)
                elif event is None or isinstance(event, yaml.StreamEndEvent):
                    return self.root
        finally:
            self.loader.dispose()

    def document(self, event: Any) -> None:
        self.documents += 1
        if self.documents > 1:
            raise YamlProblem("expected a single document, found another one", event.start_mark)

    # -- values --------------------------------------------------------------------------
    def scalar(self, event: Any) -> None:
        # The hot path of a large file, one call per value: kept to the cases that occur.
        tag, text = event.tag, event.value
        value: Any
        if tag is None or tag == "!":
            tag = _STR  # a quoted scalar, or a plain one no implicit type matches
            if event.implicit[0]:
                if text.isdigit() and text.isascii() and text[0] != "0":
                    # What the int pattern matches (the float pattern needs a '.' or ':').
                    tag = _INT
                else:
                    for candidate, pattern in _IMPLICIT.get(text[:1], ()):
                        if pattern.match(text):
                            tag = candidate
                            break
        if tag == _STR:
            value = text
        elif tag == _INT and text.isdigit() and text.isascii() and text[:1] != "0":
            value = int(text) if len(text) <= MAX_NUMBER_CHARS else OutOfRange(text)
        elif tag == _NULL:
            value = None
        elif tag == _BOOL and text.lower() in _Loader.bool_values:
            value = _Loader.bool_values[text.lower()]
        elif tag == _MERGE and self.stack and self.stack[-1].key is _NO_KEY:
            value = _MERGE_KEY
        elif tag == _INT and len(text) > MAX_NUMBER_CHARS:
            value = OutOfRange(text)
        elif tag in _SCALARS:
            value = self.construct(tag, event)
        else:
            raise YamlProblem(f"unsupported YAML tag '{_short(tag)}'", event.start_mark)
        if event.anchor is not None:
            self.anchors[event.anchor] = (value, 1, 0)
        stack = self.stack
        if stack and stack[-1].is_list:  # ``add`` for an item of a list, the common case
            self.count += 1
            if self.count > MAX_NODES:
                raise YamlProblem(too_many(self.aliased), event.start_mark)
            items = stack[-1].value
            if self.positions is not None:
                mark, path = event.start_mark, (*stack[-1].path, len(items))
                self.positions[path] = (mark.line + 1, mark.column + 1)
            items.append(value)
        else:
            self.add(value, event.start_mark, 1, 0)
        kind = type(value)
        if kind is str:
            if len(value) <= 1000 and value.isascii() and "\x00" not in value:
                return
        elif kind is bool or value is None or (kind is int and -MAX_INT - 1 <= value <= MAX_INT):
            return
        problem = scalar_problem(value)
        if problem is not None:
            self.exceeds(problem, event)

    def exceeds(self, problem: str, event: Any) -> None:
        """Note a value beyond the limits; it is reported with every other one at the end."""
        frame = self.stack[-1] if self.stack else None
        if frame is None:
            path: DataPath = ()
        elif frame.is_list:
            path = (*frame.path, len(frame.value) - 1)
        elif frame.key is _NO_KEY:  # the value of a key just stored
            path = (*frame.path, frame.last)
        else:  # a key
            path, problem = (*frame.path, frame.key), f"key: {problem}"
        if len(self.excess) < MAX_PROBLEMS:
            self.excess.append((problem, path))

    def construct(self, tag: str, event: Any) -> Any:
        node = yaml.ScalarNode(tag, event.value, event.start_mark, event.end_mark, event.style)
        try:
            return _Loader.yaml_constructors[tag](self.loader, node)
        except (yaml.YAMLError, ValueError, TypeError) as exc:
            reason = getattr(exc, "problem", None) or str(exc)
            raise YamlProblem(
                f"cannot read {event.value[:40]!r} as {_short(tag)}: {reason}", event.start_mark
            ) from None

    def start(self, event: Any) -> None:
        mapping = isinstance(event, yaml.MappingStartEvent)
        tag = event.tag
        if tag is not None and tag != "!" and tag != (_MAP if mapping else _SEQ):
            raise YamlProblem(f"unsupported YAML tag '{_short(tag)}'", event.start_mark)
        if len(self.stack) + 1 > MAX_DEPTH:
            raise YamlProblem(TOO_DEEP, event.start_mark)
        self.count += 1
        path = self.child_path()
        if event.anchor is not None:
            self.anchors[event.anchor] = None
        frame = _Frame({} if mapping else [], path, event.anchor, self.count, event.start_mark)
        self.stack.append(frame)

    def end(self, event: Any = None) -> None:
        frame = self.stack.pop()
        value = frame.value
        if frame.merges:
            merged: dict[Any, Any] = {}
            for mapping in reversed(frame.merges):  # the first one named wins
                merged.update(mapping)
            merged.update(value)
            if isinstance(value, RepeatedKeys):
                merged = RepeatedKeys(merged)
                merged.repeated = value.repeated
            value = merged
        size = self.count - frame.start + 1
        if frame.anchor is not None:
            self.anchors[frame.anchor] = (value, size, frame.height)
        self.add(value, frame.mark, 0, frame.height)  # counted when it started

    def alias(self, event: Any) -> None:
        if event.anchor not in self.anchors:
            raise YamlProblem(f"unknown alias '*{event.anchor}'", event.start_mark)
        found = self.anchors[event.anchor]
        if found is None:
            raise YamlProblem(
                f"alias '*{event.anchor}' refers to its own anchor (a cycle)", event.start_mark
            )
        value, size, height = found
        if len(self.stack) + height > MAX_DEPTH:
            raise YamlProblem(TOO_DEEP, event.start_mark)
        self.aliased = True
        self.add(value, event.start_mark, size, height)

    def add(self, value: Any, mark: Any, size: int, height: int) -> None:
        """Put a finished value where it belongs: the root, a list, a key or a key's value."""
        self.count += size
        if self.count > MAX_NODES:
            raise YamlProblem(too_many(self.aliased), mark)
        if not self.stack:
            self.root = value
            if self.positions is not None:
                self.positions[()] = (mark.line + 1, mark.column + 1)
            return
        frame = self.stack[-1]
        if height >= frame.height:
            frame.height = height + 1
        if frame.is_list:
            if self.positions is not None:
                self.record((*frame.path, len(frame.value)), mark)
            frame.value.append(value)
        elif frame.key is _NO_KEY:
            if isinstance(value, (dict, list)):
                raise YamlProblem("a mapping key must be a single value", mark)
            frame.key, frame.key_mark = value, mark
        else:
            self.put(frame, value)

    def put(self, frame: _Frame, value: Any) -> None:
        key, frame.key = frame.key, _NO_KEY
        if key is _MERGE_KEY:
            mappings = value if isinstance(value, list) else [value]
            if not all(isinstance(m, dict) for m in mappings):
                raise YamlProblem(
                    "a merge key '<<' takes a mapping or a list of mappings", frame.key_mark
                )
            frame.merges += mappings
            return
        mapping = frame.value
        if key in mapping:
            if not isinstance(mapping, RepeatedKeys):
                mapping = frame.value = RepeatedKeys(mapping)
                mapping.repeated = []
            mapping.repeated.append(key)
            if len(self.excess) < MAX_PROBLEMS:
                self.excess.append((f"duplicate key '{_show(key)}'", (*frame.path, key)))
        if self.positions is not None:
            self.record((*frame.path, key), frame.key_mark)
        mapping[key] = value
        frame.last = key

    def child_path(self) -> DataPath:
        """The data path of the value about to be added to the innermost open container."""
        if not self.stack:
            return ()
        frame = self.stack[-1]
        if frame.is_list:
            return (*frame.path, len(frame.value))
        if frame.key is _NO_KEY:  # a mapping used as a key: refused when it ends
            return frame.path
        return (*frame.path, frame.key if not isinstance(frame.key, _MergeKey) else "<<")

    def record(self, path: DataPath, mark: Any) -> None:
        if self.positions is not None:
            self.positions[path] = (mark.line + 1, mark.column + 1)


def _show(key: Any) -> str:
    return key[:40] if isinstance(key, str) else str(key)


def _short(tag: str) -> str:
    return "!!" + tag[len(_CORE) :] if tag.startswith(_CORE) else tag


def read(text: str) -> tuple[Any, list[Excess], dict[DataPath, Position]]:
    """The data of a one-document YAML text, what in it is beyond the limits, and where each
    of its paths is (see ``positions``); raises ``YamlProblem`` or ``yaml.YAMLError``.

    Positions cost about 5% of the read; reading again to locate errors would cost 100%."""
    reader = _Reader(text, record=True)
    data = reader.read()
    assert reader.positions is not None
    return data, reader.excess, reader.positions


def positions(text: str) -> dict[DataPath, Position]:
    """(line, column), 1-based, of each data path: a key's position for a mapping entry, the
    item's own for a list item. Paths inside an alias are not listed (their alias is)."""
    reader = _Reader(text, record=True)
    reader.read()
    assert reader.positions is not None
    return reader.positions
