"""Globs for file-change triggers, and the directories to watch so that they see every match.

Patterns are relative to the project root and "/"-separated: ``*`` and ``?`` stay inside one
path segment, ``**`` spans any number of segments, ``{a,b}`` gives alternatives (expanded
first, so they may contain "/"), ``[abc]`` / ``[!abc]`` a class.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from ..errors import DefinitionError


def expand_braces(pattern: str) -> list[str]:
    """``a/{b,c}/*.{ts,tsx}`` -> the four patterns it stands for (nested braces too)."""
    depth, start = 0, 0
    for i, char in enumerate(pattern):
        if char == "{":
            start = i if depth == 0 else start
            depth += 1
        elif char == "}" and depth:
            depth -= 1
            options = _split_top(pattern[start + 1 : i]) if depth == 0 else []
            if len(options) > 1:
                head, tail = pattern[:start], pattern[i + 1 :]
                expanded = [p for o in options for p in expand_braces(head + o + tail)]
                return list(dict.fromkeys(expanded))
    return [pattern]


def _split_top(text: str) -> list[str]:
    parts, depth, current = [], 0, ""
    for char in text:
        depth += {"{": 1, "}": -1}.get(char, 0)
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    return [*parts, current]


def _segment_regex(segment: str) -> str:
    out, i = [], 0
    while i < len(segment):
        char = segment[i]
        end = segment.find("]", i + 2) if char == "[" else -1
        if char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif end != -1:
            body = segment[i + 1 : end].replace("\\", "\\\\")
            out.append("[" + ("^" + body[1:] if body.startswith("!") else body) + "]")
            i = end
        else:
            out.append(re.escape(char))
        i += 1
    return "".join(out)


def glob_regex(pattern: str) -> re.Pattern[str]:
    """A brace-free glob (relative, "/"-separated) as a regex for ``fullmatch``."""
    parts = pattern.split("/")
    out = []
    for index, part in enumerate(parts):
        last = index == len(parts) - 1
        if part == "**":
            out.append(".*" if last else "(?:[^/]+/)*")
        else:
            out.append(_segment_regex(part) + ("" if last else "/"))
    return re.compile("".join(out))


def normalise(pattern: str, where: str) -> list[str]:
    """Brace-expanded, "./"- and trailing-"/"-free patterns; absolute or ".." ones refused."""
    patterns = []
    for expanded in expand_braces(pattern.strip()):
        text = re.sub("/+", "/", expanded)
        while text.startswith("./"):
            text = text[2:]
        text = text.rstrip("/")
        if not text or text.startswith("/") or ".." in text.split("/"):
            raise DefinitionError(
                f"{where}: pattern '{pattern}' must be a glob relative to the project root "
                "(no leading '/', no '..'), e.g. 'src/**/*.ts'"
            )
        patterns.append(text)
    return patterns


def has_glob(segment: str) -> bool:
    return any(char in segment for char in "*?[")


class PathMatcher:
    """Include globs anchored at the root, minus ignore globs; ``where`` prefixes errors.

    An ignore pattern without "/" matches a name at any depth (``*.log``, ``dist``), one with
    "/" is anchored; an ignored directory ignores everything in it. Raises ``DefinitionError``
    for an absolute pattern or one with "..".
    """

    def __init__(self, files: Iterable[str], ignore: Iterable[str] = (), *, where: str = ""):
        self.globs = [p for raw in files for p in normalise(raw, f"{where}.files")]
        self._include = [glob_regex(p) for p in self.globs]
        ignores = [p for raw in ignore for p in normalise(raw, f"{where}.ignore")]
        self._ignore = [("/" not in p, glob_regex(p)) for p in ignores]

    def matches(self, rel: str) -> bool:
        """Whether ``rel`` (relative to the root, "/"-separated) is included and not ignored."""
        if not any(rx.fullmatch(rel) for rx in self._include):
            return False
        parts = rel.split("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        for anywhere, rx in self._ignore:
            if any(rx.fullmatch(p) for p in (parts if anywhere else prefixes)):
                return False
        return True


@dataclass
class WatchPlan:
    """Directories to watch: ``deep`` with their subtrees, ``flat`` only their entries.

    ``wanted`` are the directories the patterns start from; one that is missing is covered by
    its nearest existing ancestor (deep) until it appears.
    """

    deep: list[Path]
    flat: list[Path]
    wanted: set[Path]

    @property
    def dirs(self) -> set[Path]:
        return {*self.deep, *self.flat}


def watch_plan(root: Path, globs: Iterable[str]) -> WatchPlan:
    """The fewest directories under ``root`` whose watching sees every path ``globs`` match."""
    deep: set[Path] = set()
    flat: set[Path] = set()
    wanted: set[Path] = set()
    for pattern in globs:
        parts = pattern.split("/")
        literal: list[str] = []
        for part in parts[:-1]:
            if has_glob(part):
                break
            literal.append(part)
        rest = parts[len(literal) :]
        base = root.joinpath(*literal)
        wanted.add(base)
        needs_depth = len(rest) > 1 or rest[0] == "**"
        while not base.is_dir() and base != root:
            base, needs_depth = base.parent, True
        (deep if needs_depth else flat).add(base)
    deep = {d for d in deep if not any(a in deep for a in d.parents)}
    flat = {d for d in flat - deep if not any(a in deep for a in d.parents)}
    return WatchPlan(sorted(deep), sorted(flat), wanted)
