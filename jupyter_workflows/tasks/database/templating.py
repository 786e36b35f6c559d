"""``${...}`` in SQL text, filled so that a value can never become SQL: ``render_sql``.

Like ``expressions.render_shell`` for commands: a small scanner knows the lexical context at
each reference and escapes the value for it, or refuses when it cannot be sure:

- inside a standard string ``'...'``: the value's text with ``'`` doubled;
- inside a quoted identifier ``"..."``: the value's text with ``"`` doubled;
- outside quotes: only a number, a boolean or null (text that is exactly a number counts, so
  ``LIMIT ${env.N}`` works); any other value is refused: quote it, or pass it in ``params``;
- refused everywhere else: comments, ``E'...'`` and other prefixed strings, dollar-quoted
  bodies (PostgreSQL, DuckDB), ``[...]`` and backquoted identifiers (SQLite).

Assumes PostgreSQL's default ``standard_conforming_strings = on`` (a backslash in ``'...'`` is
an ordinary character). ``$${`` writes a literal ``${``. Parameters (``params``) remain the
better way to pass values; this keeps workflow files that template their SQL working, safely.
"""

from __future__ import annotations

import math
import re
from typing import Any

from ...definition.templates import Reference, Scope, find_references, to_text
from .failures import DatabaseFailure

NORMAL, STRING, ESCAPE_STRING, PREFIXED_STRING, IDENT = "sql", "'...'", "E'...'", "x'...'", '"'
LINE_COMMENT, BLOCK_COMMENT, DOLLAR, BRACKET, BACKTICK = "--", "/*", "$$", "[", "`"
_NUMBER_RE = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_DOLLAR_TAG_RE = re.compile(r"\$(?:[A-Za-z_][A-Za-z0-9_]*)?\$")
_WORD_RE = re.compile(r"[A-Za-z0-9_]")


class _Scanner:
    """Walks SQL text and knows, between any two characters, which context it is in."""

    def __init__(self, dialect: str):
        self.sqlite = dialect == "sqlite"
        self.state = NORMAL
        self.depth = 0  # nested /* */ (PostgreSQL and DuckDB nest them, SQLite does not)
        self.tag = ""  # the closing $tag$ of a dollar-quoted body
        self.word = ""  # the word (letters, digits, _) that ends right here, outside contexts

    def feed(self, text: str) -> None:
        i = 0
        while i < len(text):
            i = self._step(text, i)

    def _step(self, text: str, i: int) -> int:
        state, char, pair = self.state, text[i], text[i : i + 2]
        if state == NORMAL:
            return self._normal(text, i)
        if state in (STRING, PREFIXED_STRING, IDENT, BACKTICK):
            quote = {STRING: "'", PREFIXED_STRING: "'", IDENT: '"', BACKTICK: "`"}[state]
            if pair == quote * 2:
                return i + 2
            if char == quote:
                self.state = NORMAL
        elif state == ESCAPE_STRING:
            if char == "\\" or pair == "''":
                return i + 2
            if char == "'":
                self.state = NORMAL
        elif state == LINE_COMMENT and char == "\n":
            self.state = NORMAL
        elif state == BLOCK_COMMENT:
            return self._comment(pair, i)
        elif state == DOLLAR and text.startswith(self.tag, i):
            self.state = NORMAL
            return i + len(self.tag)
        elif state == BRACKET and char == "]":
            self.state = NORMAL
        return i + 1

    def _normal(self, text: str, i: int) -> int:
        char, pair = text[i], text[i : i + 2]
        word, self.word = self.word, (self.word + char if _WORD_RE.match(char) else "")
        if char == "'":
            # E'..' alone has backslash escapes. After any other word (X'..', N'..', LIKE'..')
            # or U&: lexed as standard, but no value goes in.
            if word in ("E", "e"):
                self.state = ESCAPE_STRING
            elif word or text[i - 1 : i] == "&":
                self.state = PREFIXED_STRING
            else:
                self.state = STRING
        elif char == '"':
            self.state = IDENT
        elif pair == "--":
            self.state = LINE_COMMENT
            return i + 2
        elif pair == "/*":
            self.state, self.depth = BLOCK_COMMENT, 1
            return i + 2
        elif char == "$" and not self.sqlite and not word:  # a$b$ is an identifier
            tag = _DOLLAR_TAG_RE.match(text, i)
            if tag:
                self.state, self.tag = DOLLAR, tag.group()
                return i + len(self.tag)
        elif self.sqlite and char in "[`":
            self.state = BRACKET if char == "[" else BACKTICK
        return i + 1

    def _comment(self, pair: str, i: int) -> int:
        if pair == "*/":
            self.depth -= 1
            if self.depth == 0:
                self.state = NORMAL
            return i + 2
        if pair == "/*" and not self.sqlite:
            self.depth += 1
            return i + 2
        return i + 1

    def fill(self, value: Any, ref: Reference, where: str) -> str:
        """``value`` written for the current context, or DatabaseFailure saying why not."""
        self.word = "x"  # the value is a token: a quote right after it is not a fresh string
        if self.state == STRING:
            return to_text(value).replace("'", "''")
        if self.state == IDENT:
            return to_text(value).replace('"', '""')
        if self.state == NORMAL:
            literal = _bare_literal(value)
            if literal is not None:
                return literal
            raise DatabaseFailure(
                f"{where}: {ref.text} is text outside quotes, which could become SQL: write"
                f" '{ref.text}' for a string, \"{ref.text}\" for a name, or pass it in 'params'"
            )
        raise DatabaseFailure(
            f"{where}: {ref.text} inside {_describe(self.state)} cannot be filled in safely;"
            " pass the value in 'params'"
        )


def _bare_literal(value: Any) -> str | None:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int) or (isinstance(value, float) and math.isfinite(value)):
        return repr(value)
    if isinstance(value, str) and _NUMBER_RE.fullmatch(value):
        return value
    return None


def _describe(state: str) -> str:
    return {
        ESCAPE_STRING: "an E'...' string",
        PREFIXED_STRING: "a prefixed string (X'...', N'...')",
        LINE_COMMENT: "a comment",
        BLOCK_COMMENT: "a comment",
        DOLLAR: "a dollar-quoted string",
        BRACKET: "a [bracketed] name",
        BACKTICK: "a `backquoted` name",
    }.get(state, state)


def render_sql(text: str, scope: Scope, dialect: str, where: str) -> str:
    """``text`` with each ``${...}`` filled for its SQL context (``dialect``: sqlite, duckdb or
    postgresql); ``where`` names the query in errors ("query", "query 2")."""
    references = {ref.start: ref for ref in find_references(text)}
    if not references and "$${" not in text:
        return text
    scanner = _Scanner(dialect)
    out: list[str] = []
    literal_start = i = 0
    while i < len(text):
        ref = references.get(i)
        if ref is None and not text.startswith("$${", i):
            i += 1
            continue
        scanner.feed(text[literal_start:i])
        out.append(text[literal_start:i])
        if ref is None:  # the $${ escape: a literal ${
            scanner.feed("${")
            out.append("${")
            i += 3
        else:
            out.append(scanner.fill(scope.resolve(ref), ref, where))
            i = ref.end
        literal_start = i
    out.append(text[literal_start:])
    return "".join(out)
