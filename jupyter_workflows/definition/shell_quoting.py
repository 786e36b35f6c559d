"""Render a shell command so that no templated value can become shell syntax.

``render_shell`` follows the quoting context of each ``${...}`` reference in a command and
escapes the value for it; where no escaping can be guaranteed it refuses with an error.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import ExpressionError
from .templates import Reference, Scope, split_template, to_text

_UNQUOTED, _SINGLE, _DOUBLE = "unquoted", "single", "double"
_ANSI, _COMMENT, _BACKTICK = "ansi-c", "comment", "backtick"
_WORD_BREAKS = frozenset(" \t\n;&|()<>")  # after these, a '#' starts a comment
_DOUBLE_SPECIAL_RE = re.compile(r'[\\"$`]')  # what a backslash must protect inside "..."
# A here-document operator's word: `<<[-] [ \t]* WORD`, WORD possibly quoted.
_HEREDOC_WORD_RE = re.compile(
    r"""(-?)[ \t]*((?:[^\s;&|()<>'"\\]|\\.|'[^']*'|"(?:[^"\\]|\\.)*")*)""", re.DOTALL
)
_QUOTED_PART_RE = re.compile(r"""\\(.)|'([^']*)'|"((?:[^"\\]|\\.)*)\"""", re.DOTALL)


@dataclass
class _Frame:
    """One nesting level: the top level, a ``$(...)``, a ``$((...))`` or a backquote."""

    closer: str  # "" (top level), ")", "))" or "`"
    quote: str = _UNQUOTED
    depth: int = 0  # "(" opened inside this frame and not yet closed


def _unquote_word(word: str) -> str:
    """A here-document delimiter with its quotes removed, as the shell compares it."""

    def unquote(match: re.Match[str]) -> str:
        escaped, single, double = match.groups()
        if escaped is not None:
            return escaped
        return single if single is not None else re.sub(r"\\(.)", r"\1", double, flags=re.S)

    return _QUOTED_PART_RE.sub(unquote, word)


class _ShellContext:
    """A left-to-right state machine tracking where the next character of a command lands."""

    def __init__(self, command: str) -> None:
        self.command = command
        self.frames = [_Frame("")]
        self.escaped = False  # the previous character was an active backslash
        self.word_start = True  # a '#' here would start a comment
        self.heredocs: list[tuple[str, bool]] = []  # pending (delimiter, strip_tabs)
        self.in_heredoc = False
        self.heredoc_line = ""
        self.open_delimiter = False  # the text ended inside a here-document's delimiter

    def feed(self, text: str) -> None:
        """Advance over literal command text."""
        self.open_delimiter = False
        i = 0
        while i < len(text):
            i = self._step(text, i)

    def quote(self, value: str, ref: Reference) -> str:
        """``value`` escaped so that, at the current position, the shell reads it as data."""
        problem = self._unsupported_reason()
        if problem:
            raise ExpressionError(f"{ref.text} cannot be used {problem}", self.command, ref.start)
        frame = self.frames[-1]
        self.word_start = False
        if frame.quote == _COMMENT:
            return ""  # a value in a comment is dropped: a newline in it would end the comment
        if frame.quote == _SINGLE:
            return value.replace("'", "'\\''")
        if frame.quote == _DOUBLE:
            return _DOUBLE_SPECIAL_RE.sub(r"\\\g<0>", value)
        # Always quoted, even when "safe": a bare value could be a keyword or an assignment.
        return "'" + value.replace("'", "'\\''") + "'"

    def _unsupported_reason(self) -> str | None:
        frame = self.frames[-1]
        if self.in_heredoc:
            return "inside a here-document (pass it through a variable: v=${...}, then $v)"
        if self.open_delimiter:
            return "as part of a here-document delimiter"
        if self.escaped:
            return "right after a backslash"
        if frame.quote == _ANSI:
            return "inside $'...' quoting"
        if frame.quote == _BACKTICK:
            return "inside `...` command substitution (use $(...) instead)"
        if frame.closer == "))":
            return "inside $((...)) arithmetic (assign it to a variable first: n=${...})"
        return None

    def _step(self, text: str, i: int) -> int:
        """Consume the character(s) at ``i``; return the next index."""
        if self.in_heredoc:
            return self._step_heredoc(text, i)
        if self.escaped:
            self.escaped = False
            self.word_start = False
            return i + 1
        frame = self.frames[-1]
        if frame.quote == _UNQUOTED:
            return self._step_unquoted(text, i, frame)
        if frame.quote == _COMMENT:
            if text[i] == "\n":
                frame.quote = _UNQUOTED
                self._newline()
            return i + 1
        self.word_start = False
        return self._step_quoted(text, i, frame)

    def _step_unquoted(self, text: str, i: int, frame: _Frame) -> int:
        char, after = text[i], text[i + 1 : i + 2]
        if char == "\\":
            if after == "\n":
                return i + 2  # a line continuation vanishes; word_start is unchanged
            self.escaped = True
        elif char in "'\"":
            frame.quote = _SINGLE if char == "'" else _DOUBLE
        elif char == "$" and after == "'":
            frame.quote = _ANSI  # bash's $'...': backslash escapes work differently there
            self.word_start = False
            return i + 2
        elif char == "$" and after == "(":
            return self._open_substitution(text, i)
        elif char == "`":
            self.frames.append(_Frame("`", _BACKTICK))
        elif char == "#" and self.word_start:
            frame.quote = _COMMENT
        elif char == "<" and after == "<" and frame.closer != "))":  # "<<" in $((...)) shifts
            return self._heredoc_operator(text, i)
        elif char == "(":
            frame.depth += 1
        elif char == ")":
            return self._close_paren(text, i, frame)
        elif char == "\n":
            self._newline()
        self.word_start = char in _WORD_BREAKS
        return i + 1

    def _step_quoted(self, text: str, i: int, frame: _Frame) -> int:
        char = text[i]
        if frame.quote == _SINGLE:
            if char == "'":
                frame.quote = _UNQUOTED
        elif char == "\\":
            self.escaped = True
        elif frame.quote == _ANSI:
            if char == "'":
                frame.quote = _UNQUOTED
        elif frame.quote == _BACKTICK:
            if char == "`":
                self.frames.pop()
        elif char == '"':
            frame.quote = _UNQUOTED
        elif char == "$" and text[i + 1 : i + 2] == "(":
            return self._open_substitution(text, i)
        elif char == "`":
            self.frames.append(_Frame("`", _BACKTICK))
        return i + 1

    def _open_substitution(self, text: str, i: int) -> int:
        """``$(`` or ``$((``: a fresh, unquoted context until the matching close."""
        arithmetic = text[i + 2 : i + 3] == "("
        self.frames.append(_Frame("))" if arithmetic else ")"))
        self.word_start = True
        return i + (3 if arithmetic else 2)

    def _close_paren(self, text: str, i: int, frame: _Frame) -> int:
        if frame.depth:
            frame.depth -= 1
        elif frame.closer in (")", "))"):
            self.frames.pop()
            self.word_start = False  # "$(x)#y" is one word, not a comment
            return i + (2 if frame.closer == "))" and text[i + 1 : i + 2] == ")" else 1)
        self.word_start = True
        return i + 1

    def _heredoc_operator(self, text: str, i: int) -> int:
        """``<<WORD``: remember the delimiter; the body starts after the next newline."""
        if text[i + 2 : i + 3] == "<":  # bash's <<< here-string is an ordinary word
            self.word_start = True
            return i + 3
        match = _HEREDOC_WORD_RE.match(text, i + 2)
        assert match is not None  # the pattern can match the empty string
        strip_tabs, word = match.group(1), match.group(2)
        if word:
            self.heredocs.append((_unquote_word(word), bool(strip_tabs)))
        self.open_delimiter = match.end() == len(text)
        self.word_start = False
        return match.end()

    def _newline(self) -> None:
        self.word_start = True
        if self.heredocs:
            self.in_heredoc = True
            self.heredoc_line = ""

    def _step_heredoc(self, text: str, i: int) -> int:
        """Consume one body line; the line equal to the delimiter ends the body."""
        end = text.find("\n", i)
        if end < 0:
            self.heredoc_line += text[i:]
            return len(text)
        line, self.heredoc_line = self.heredoc_line + text[i:end], ""
        delimiter, strip_tabs = self.heredocs[0]
        if (line.lstrip("\t") if strip_tabs else line) == delimiter:
            self.heredocs.pop(0)
            self.in_heredoc = bool(self.heredocs)
        return end + 1


def render_shell(command: str, scope: Scope) -> str:
    """Render a shell command so that no templated value can become shell syntax.

    The command is scanned left to right by a small state machine that knows the quoting
    context at each reference and escapes the value for it:

    - unquoted (also inside ``$(...)``): single-quoted, ``'`` as ``'\\''``; empty gives ``''``;
    - inside ``'...'``: the quote is closed, the value emitted, reopened (``'\\''`` per quote);
    - inside ``"..."``: ``\\``, ``"``, ``$`` and backquote are backslash-escaped;
    - inside a ``#`` comment: the value is dropped (a newline in it would end the comment).

    Tracked: backslash escapes and line continuations, comments, nested ``$(...)`` (with
    parentheses counted), backquotes, ``$((...))`` and here-documents. A reference where
    escaping cannot be guaranteed raises ``ExpressionError`` instead of guessing: in a
    here-document body or delimiter, right after a backslash, inside backquotes, ``$((...))``
    or bash's ``$'...'``.

    Limits: shell ``${VAR...}`` expansions (written ``$${VAR}``) are not analysed, so a value
    inside ``"$${VAR:-${x}}"`` stays data but may lose its ``}`` to the expansion; a ``)``
    that closes a ``case`` pattern inside ``$(...)`` is miscounted, and a line continuation
    splitting an operator (``$\\<newline>(``) is not recognised. Target: POSIX ``sh`` (dash);
    bash reads the same output the same way.
    """
    context = _ShellContext(command)
    rendered: list[str] = []
    for part in split_template(command):
        if isinstance(part, str):
            context.feed(part)
            rendered.append(part)
        else:
            rendered.append(context.quote(to_text(scope.resolve(part)), part))
    return "".join(rendered)
