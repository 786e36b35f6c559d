"""The vocabulary of the shell lexer: marks, words, expansions, frames and the sink.

A *mark* is one private-use character standing for a ``${...}`` reference in the text the
lexer reads (``mark(i)`` for reference ``i``), so the lexer never sees a value.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from typing import Protocol

MARK_BASE, MARK_END = 0xF0000, 0xFFFFE  # Supplementary Private Use Area-A
UNQUOTED, SINGLE, DOUBLE, ANSI = "unquoted", "single", "double", "ansi-c"
COMMENT, ARITH = "comment", "arithmetic"
NUMBER, NAME, INERT = "number", "name", "inert"  # what a value must be where it lands
NEVER = "never"  # no value may land there (in a here-document of a nested script, ...)
OPERAND = "operand"  # not an option: where a value starting with - could turn on sh -c, su -c

RESERVED_PREFIX = frozenset(
    {"if", "then", "elif", "else", "do", "while", "until", "!", "{", "time", "coproc"}
)
SUBSCRIPT = "in an array subscript [...]"
IDENT_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# An identifier inside arithmetic text, not part of a number such as 0x1f or 16#ff.
ARITH_NAME_RE = re.compile(r"(?<![A-Za-z0-9_#.])[A-Za-z_][A-Za-z0-9_]*")
SPECIAL = "#?-$!0"
PIPELINES = itertools.count()  # pipeline numbers, unique across lexers
OPERATORS = ("##", "%%", "//", "^^", ",,", ":-", ":=", ":?", ":+")


def mark(index: int) -> str:
    """The character that stands for reference ``index`` in the text given to the lexer."""
    return chr(MARK_BASE + index)


def is_mark(char: str) -> bool:
    return len(char) == 1 and MARK_BASE <= ord(char) < MARK_END


@dataclass(frozen=True)
class Expansion:
    """A ``$name``, ``${...}``, ``$(...)`` or ``$((...))`` in a word: the variables it reads
    (``@`` for the positional parameters, ``*`` for any variable) and the marks inside it."""

    names: frozenset[str] = frozenset()
    marks: frozenset[str] = frozenset()


@dataclass
class Word:
    """One shell word after quote removal: characters (marks included) and expansions."""

    items: list[str | Expansion] = field(default_factory=list)
    quoted: list[bool] = field(default_factory=list)
    role: str = "arg"  # "arg", "redirect" (a redirection's target), "dup" (of >&), "herestring",
    # or "arith" (a ((...)) command)
    assign: int | None = None  # index of the first item after NAME= / NAME+= / NAME[..]=

    @property
    def marks(self) -> set[str]:
        found: set[str] = set()
        for item in self.items:
            if isinstance(item, Expansion):
                found |= item.marks
            elif is_mark(item):
                found.add(item)
        return found

    @property
    def names(self) -> set[str]:
        return {n for item in self.items if isinstance(item, Expansion) for n in item.names}

    @property
    def may_vanish(self) -> bool:
        """Only unquoted expansions (``$opt``), or a quoted ``"$@"``: it can expand to no
        word at all, moving the words after it one place to the left."""
        return bool(self.items) and all(
            isinstance(item, Expansion) and (not quoted or "@" in item.names)
            for item, quoted in zip(self.items, self.quoted, strict=True)
        )

    def literal(self) -> str | None:
        """The word's text when it is plain text (no marks, no expansions), else None."""
        if any(isinstance(item, Expansion) or is_mark(item) for item in self.items):
            return None
        return "".join(self.items)  # type: ignore[arg-type]

    def text(self, start: int = 0, end: int | None = None) -> str:
        """The text of ``items[start:end]`` with every expansion shown as NUL."""
        return "".join("\0" if isinstance(i, Expansion) else i for i in self.items[start:end])

    def part(self, start: int, end: int | None = None) -> Word:
        return Word(self.items[start:end], self.quoted[start:end], self.role)


class Sink(Protocol):
    def site(self, char: str, quote: str, refused: str | None) -> None: ...
    def need(self, marks: set[str] | frozenset[str], kind: str, why: str) -> None: ...
    def use(self, names: set[str] | frozenset[str], kind: str, why: str) -> None: ...
    def command(self, words: list[Word], pipeline: int) -> None: ...
    def function(self, name: str) -> None: ...


@dataclass
class Frame:
    """One nesting level of the text being lexed."""

    kind: str  # "cmd" (top, $(...), <(...)), "tick", "arith", "param", "doc"
    closer: str = ""  # ")", "`", "))", "]", "}" or ""
    quote: str = UNQUOTED
    depth: int = 0  # "(" or "[" opened inside this frame and not yet closed
    why: str = ""  # for arithmetic: where it is, for messages
    names: set[str] = field(default_factory=set)  # variables read anywhere inside
    marks: set[str] = field(default_factory=set)  # marks anywhere inside
    # command frames
    word: Word | None = None
    words: list[Word] = field(default_factory=list)
    cond: bool = False  # inside [[ ... ]]
    regex: int = 0  # parentheses open in a [[ =~ ]] regex
    cases: list[str] = field(default_factory=list)  # per open case: subject, pattern, body
    role: str = "arg"  # role of the next word
    pipeline: int = field(default_factory=lambda: next(PIPELINES))
    subscript: int = 0  # depth of an array subscript in the current word
    sub_from: int = 0
    array: int = 0  # depth of a compound array assignment NAME=(...) in the current word
    # parameter expansion ${...}
    phase: str = "start"  # start, name, after, sub, offset, word
    name: str = ""
    length: bool = False  # ${#NAME}
    indirect: bool = False  # ${!NAME}
    outer: str = UNQUOTED  # the quoting around the ${...}: unquoted, double or arithmetic
    # backquotes and here-document bodies
    raw: list[str] = field(default_factory=list)
    delimiter: str = ""
    strip_tabs: bool = False
    expand: bool = True


IN_BACKQUOTES = "inside `...` command substitution (use $(...) instead)"
ARITH_COMMAND = "inside ((...))"
ANSI_QUOTE = "after \\' inside $'...', which sh and bash read differently"


def keyword(word: Word) -> str | None:
    """The word as a reserved word (``if``, ``[[``, ``case``...): unquoted plain text only."""
    return None if any(word.quoted) else word.literal()
