"""Definition files and text to data, bounded by ``limits``, every problem located.

``read_file`` returns a file's text or raises ``Unreadable`` (missing, a directory, a device,
a pipe: nothing that is not a regular file is opened for reading) or ``ValidationError`` (too
large, not UTF-8, with the line of the first undecodable byte). ``parse`` turns JSON or YAML
text into data or raises ``ValidationError`` with one located problem: a syntax error, a NUL
or an unpaired surrogate in the text, nesting or aliases beyond the limits, a YAML tag that is
not plain data. With the data it returns what in it is beyond the limits (long strings,
numbers out of range, repeated keys), each with its data path, for the caller to locate.
"""

from __future__ import annotations

import json
import math
import os
import re
import stat
from pathlib import Path
from typing import Any

from ..errors import DefinitionError, Problem, ValidationError
from .limits import (
    MAX_DEPTH,
    MAX_FILE_BYTES,
    MAX_NUMBER_CHARS,
    TOO_DEEP,
    Excess,
    OutOfRange,
    RepeatedKeys,
    check_data,
)
from .locate import DataPath, Position, too_deep_offset

FORMATS = {".json": "json", ".yaml": "yaml", ".yml": "yaml", "yml": "yaml"}
_BOM = b"\xef\xbb\xbf"
_SURROGATE = re.compile("[\ud800-\udfff]")


class Unreadable(DefinitionError):
    """A definition file that cannot be read; ``reason`` says why without repeating the name."""

    def __init__(self, path: Path, reason: str):
        self.reason = reason
        super().__init__(f"{path}: {reason}")


def read_file(path: Path) -> str:
    """The text of a definition file (UTF-8, a leading BOM dropped)."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise Unreadable(path, "no such workflow file") from None
    except OSError as exc:
        raise Unreadable(path, f"cannot read it: {exc.strerror or exc}") from None
    if stat.S_ISDIR(info.st_mode):
        raise Unreadable(path, "is a directory, not a workflow file")
    if not stat.S_ISREG(info.st_mode):
        raise Unreadable(path, "is not a regular file (a device, pipe or socket)")
    try:
        with open(path, "rb") as file:
            data = file.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise Unreadable(path, f"cannot read it: {exc.strerror or exc}") from None
    if len(data) > MAX_FILE_BYTES:
        raise ValidationError([Problem(_too_large("file"), file=str(path))])
    if data.startswith(_BOM):
        data = data[len(_BOM) :]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValidationError([_undecodable(data, exc, str(path))]) from None


def _too_large(what: str) -> str:
    size = MAX_FILE_BYTES // 1024 // 1024
    return f"the {what} is larger than {size} MiB, the limit of a workflow file"


def _undecodable(data: bytes, exc: UnicodeDecodeError, source: str) -> Problem:
    start = data.rfind(b"\n", 0, exc.start) + 1
    column = len(data[start : exc.start].decode("utf-8", "replace")) + 1
    message = f"not UTF-8 text: byte 0x{data[exc.start]:02x} ({exc.reason}); save the file as UTF-8"
    return Problem(message, file=source, line=data.count(b"\n", 0, exc.start) + 1, column=column)


def format_of(text: str, fmt: str | None) -> str:
    """ "json" or "yaml": ``fmt`` (a name or a file suffix), else JSON when the text starts
    with '{'."""
    fmt = FORMATS.get(fmt or "", fmt) or ("json" if text.lstrip().startswith("{") else "yaml")
    if fmt not in ("json", "yaml"):
        raise ValueError(f"unknown format {fmt!r}; expected 'json' or 'yaml'")
    return fmt


def parse(
    text: str, source: str, fmt: str | None, line_offset: int = 0
) -> tuple[Any, list[Excess], dict[DataPath, Position] | None]:
    """JSON or YAML text to data (see ``format_of`` for ``fmt``), what is beyond limits, and
    for YAML the position of every path (JSON's are found only when a problem needs them)."""
    fmt = format_of(text, fmt)
    if len(text) > MAX_FILE_BYTES:
        raise ValidationError([Problem(_too_large("text"), file=source)])
    place = Place(text, source, line_offset)
    if "\x00" in text:
        raise place.error("a NUL character (\\u0000): a workflow file is text", text.index("\x00"))
    if not text.isascii() and (bad := _SURROGATE.search(text)):
        message = f"an unpaired surrogate (\\u{ord(bad.group()):04x}): not valid Unicode"
        raise place.error(message, bad.start())
    return _parse_json(text, place) if fmt == "json" else _parse_yaml(text, place)


class Place:
    """Turns offsets and marks in one text into located problems."""

    def __init__(self, text: str, source: str, line_offset: int) -> None:
        self.text, self.source, self.line_offset = text, source, line_offset

    def problem(self, message: str, line: int | None, column: int | None) -> ValidationError:
        line = None if line is None else line + self.line_offset
        return ValidationError([Problem(message, file=self.source, line=line, column=column)])

    def error(self, message: str, offset: int) -> ValidationError:
        start = self.text.rfind("\n", 0, offset) + 1
        return self.problem(message, self.text.count("\n", 0, offset) + 1, offset - start + 1)


def _parse_json(text: str, place: Place) -> tuple[Any, list[Excess], None]:
    try:
        data = json.loads(
            text,
            parse_int=_json_int,
            parse_float=_json_float,
            parse_constant=OutOfRange,
            object_pairs_hook=_json_object,
        )
    except json.JSONDecodeError as exc:
        raise place.problem(f"invalid JSON: {exc.msg}", exc.lineno, exc.colno) from None
    except RecursionError:  # far deeper than the limit: find where it was first passed
        raise place.error(TOO_DEEP, too_deep_offset(text, MAX_DEPTH) or 0) from None
    return data, check_data(data), None


def _json_int(literal: str) -> int | OutOfRange:
    return int(literal) if len(literal) <= MAX_NUMBER_CHARS else OutOfRange(literal)


def _json_float(literal: str) -> float | OutOfRange:
    value = float(literal)
    return value if math.isfinite(value) else OutOfRange(literal)


def _json_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    mapping = dict(pairs)
    if len(mapping) == len(pairs):
        return mapping
    repeated = RepeatedKeys(mapping)
    seen: set[str] = set()
    repeated.repeated = [k for k, _ in pairs if k in seen or seen.add(k)]  # type: ignore[func-returns-value]
    return repeated


def _parse_yaml(text: str, place: Place) -> tuple[Any, list[Excess], dict[DataPath, Position]]:
    import yaml  # 20-30 ms: only for YAML text

    from . import yaml_reader

    try:
        return yaml_reader.read(text)
    except yaml_reader.YamlProblem as exc:
        line = None if exc.line is None else exc.line + 1
        column = None if exc.column is None else exc.column + 1
        raise place.problem(exc.message, line, column) from None
    except yaml.reader.ReaderError as exc:  # a character YAML does not allow
        reason = f"invalid YAML: {exc.reason}" + _character(exc.character)
        raise place.error(reason, _char_offset(text, exc.position)) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        reason = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        context = getattr(exc, "context", None)
        message = f"invalid YAML: {reason}" + (f" ({context})" if context else "")
        if "maximum nesting depth" in reason:  # libyaml's own bound (1000), past ours
            message = TOO_DEEP
        line = mark.line + 1 if mark else None
        raise place.problem(message, line, mark.column + 1 if mark else None) from None


def _character(character: Any) -> str:
    code = character if isinstance(character, int) else ord(character[:1] or "\0")
    return f" (U+{code:04X})"


def _char_offset(text: str, position: int) -> int:
    """libyaml reports a byte offset into the UTF-8 text, the pure-Python reader a character."""
    import yaml

    if getattr(yaml, "__with_libyaml__", False) and not text.isascii():
        return len(text.encode("utf-8")[:position].decode("utf-8", "ignore"))
    return position
