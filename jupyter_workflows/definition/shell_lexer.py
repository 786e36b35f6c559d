"""Lex a shell command to learn what each templated value would meet once it is filled in.

The command text carries a *mark* (``shell_words.mark(i)``) where reference ``i`` goes; the
lexer never sees a value, so what it finds holds for every value. It follows POSIX sh and
bash: quotes and backslashes, comments, ``$(...)``, ``<(...)``, backquotes, ``$((...))``,
``((...))``, ``${...}`` with subscripts and substring offsets, ``[[ ... ]]``, ``case``,
compound array assignments, here-documents and here-strings. Where sh and bash read a text
differently in a way that could move a value into another quoting (``$'\\''``, quotes in
arithmetic, ``$[...]``, a syntax error inside ``NAME=(...)``), every later mark is refused.

It reports to a ``Sink`` (``shell_flow.Facts``): each mark with the quoting it lands in, the
marks and variables that land in arithmetic, and each finished simple command as a list of
``Word`` objects, which the sink interprets (assignments, ``read``, ``eval``, ``sh -c`` ...).
"""

from __future__ import annotations

import re

from .shell_expansions import LexerCore
from .shell_words import (
    ANSI,
    ANSI_QUOTE,
    ARITH_COMMAND,
    ARITH_NAME_RE,
    COMMENT,
    DOUBLE,
    IDENT_RE,
    NUMBER,
    PIPELINES,
    RESERVED_PREFIX,
    SINGLE,
    SUBSCRIPT,
    UNQUOTED,
    Frame,
    is_mark,
    keyword,
)

_HEREDOC_WORD_RE = re.compile(
    r"""(-?)[ \t]*((?:[^\s;&|()<>'"\\]|\\.|'[^']*'|"(?:[^"\\]|\\.)*")*)""", re.DOTALL
)
_QUOTED_PART_RE = re.compile(r"""\\(.)|'([^']*)'|"((?:[^"\\]|\\.)*)\"""", re.DOTALL)


class Lexer(LexerCore):
    """The command level: words, simple commands, operators, quotes and redirections."""

    def _unquoted(self, i: int, frame: Frame) -> int:
        text, char = self.text, self.text[i]
        if frame.array and char in "<>;&|(":
            self.lost = (
                self.lost or f"after {char!r} inside NAME=(...), a syntax error bash recovers from"
            )
            self._add(char, False)
        elif frame.array and char in " \t\n)":
            frame.array -= char == ")"
            self._add(" " if char in " \t\n" else char, False)
        elif char in " \t":
            self._end_word(frame)
        elif char == "\n":
            self._end_word(frame)
            if frame.cond:  # a separator to sh, which has no [[ ]]
                self._add("\n", False)
                self._end_word(frame)
            self._newline(frame)
        elif char == "\\":
            return self._backslash(i, frame)
        elif char == "#" and (frame.word is None or self._array_element_start(frame)):
            return self._comment(i)
        elif char in "'\"":
            self._word(frame)
            frame.quote = SINGLE if char == "'" else DOUBLE
        elif char == "`":
            self.frames.append(Frame("tick", "`"))
        elif char == "$":
            return self._dollar(i, frame)
        elif frame.cond and char in "&|()<>":
            return self._cond_operator(i, frame)
        elif char in "<>" and text[i + 1 : i + 2] == "(":  # <(...): part of the word, in bash
            self.frames.append(Frame("cmd", ")"))
            return i + 2
        elif char in "<>":
            return self._redirect(i, frame)
        elif char == "(":
            return self._open_paren(i, frame)
        elif char == ")":
            return self._close_paren(i, frame)
        elif char in ";&|":
            return self._operator(i, frame)
        elif char == "[" and self._starts_subscript(frame):
            frame.subscript, frame.sub_from = 1, len(self._word(frame).items) + 1
            self._add(char, False)
        elif char in "[]" and frame.subscript:
            frame.subscript += 1 if char == "[" else -1
            if not frame.subscript:
                inside = self._word(frame).text(frame.sub_from)
                self.sink.use(set(ARITH_NAME_RE.findall(inside)), NUMBER, SUBSCRIPT)
            self._add(char, False)
        elif char == "=" or (char == "+" and text[i + 1 : i + 2] == "="):
            return self._equals(i, frame)
        else:
            self._add(char, False)
        return i + 1

    def _quoted(self, i: int, frame: Frame) -> int:
        char = self.text[i]
        if frame.quote == SINGLE:
            if char == "'":
                frame.quote = UNQUOTED
            else:
                self._add(char, True)
        elif frame.quote == ANSI:
            if char == "'":
                frame.quote = UNQUOTED
            elif char == "\\":  # $'\'' is a quote, not the end; the escape itself is kept
                if self.text[i + 1 : i + 2] == "'":
                    self.lost = self.lost or ANSI_QUOTE
                self._add(self.text[i : i + 2], True)
                return i + 2
            else:
                self._add(char, True)
        elif char == '"':
            frame.quote = UNQUOTED
        elif char == "\\":
            return self._backslash(i, frame)
        elif char == "$":
            return self._dollar(i, frame)
        elif char == "`":
            self.frames.append(Frame("tick", "`"))
        else:
            self._add(char, True)
        return i + 1

    def _comment(self, i: int) -> int:
        end = self.text.find("\n", i)
        end = len(self.text) if end < 0 else end
        for char in self.text[i:end]:
            if is_mark(char):
                self.sink.site(char, COMMENT, self.lost)
        return end

    def _end_word(self, frame: Frame) -> None:
        word, frame.word = frame.word, None
        frame.subscript = frame.array = 0
        if word is None:
            return
        literal = None if any(word.quoted) else word.literal()  # a quoted word is no keyword
        first = all(keyword(w) in RESERVED_PREFIX for w in frame.words)
        state = frame.cases[-1] if frame.cases else None
        if state == "pattern":
            if literal == "esac":
                frame.cases.pop()
            return  # case patterns are matched against, never run
        if state == "subject" and literal == "in":
            frame.cases[-1], frame.words = "pattern", []
            return
        if state == "body" and first and literal == "esac":
            frame.cases.pop()
            return
        if first and literal == "case" and not frame.cond:
            frame.cases.append("subject")
        if first and literal == "[[":
            frame.cond = True
        elif frame.cond and literal == "]]":
            frame.cond = False
        frame.words.append(word)

    def _end_command(self, frame: Frame, *, new_pipeline: bool = True) -> None:
        self._end_word(frame)
        words, frame.words, frame.cond = frame.words, [], False
        if words and not (frame.cases and frame.cases[-1] in ("subject", "pattern")):
            self.sink.command(words, frame.pipeline)
        if new_pipeline:
            frame.pipeline = next(PIPELINES)

    def _newline(self, frame: Frame) -> None:
        if not (frame.cond or (frame.cases and frame.cases[-1] in ("subject", "pattern"))):
            self._end_command(frame)
        if self.docs:
            self.frames.append(self.docs.pop(0))

    def _operator(self, i: int, frame: Frame) -> int:
        text, char = self.text, self.text[i]
        pair = text[i : i + 2]
        if pair in (";;", ";&"):
            self._end_command(frame)
            if frame.cases:
                frame.cases[-1] = "pattern"
            return i + (3 if text[i : i + 3] == ";;&" else 2)
        if char == "|" and frame.cases and frame.cases[-1] == "pattern":
            self._end_word(frame)
            return i + 1
        if pair == "&>":
            return self._redirect(i + 1, frame)
        self._end_command(frame, new_pipeline=char != "|" or pair == "||")
        return i + (2 if pair in ("&&", "||", "|&") else 1)

    def _open_paren(self, i: int, frame: Frame) -> int:
        if frame.cases and frame.cases[-1] == "pattern":
            return i + 1  # the optional "(" before a case pattern
        words = frame.words + ([frame.word] if frame.word is not None else [])
        first = all(keyword(w) in RESERVED_PREFIX | {"for"} for w in words)
        if frame.word is None and first and self.text[i + 1 : i + 2] == "(":
            self._word(frame).role = "arith"  # ((...)) and for ((...)): arithmetic
            self.frames.append(Frame("arith", "))", why=ARITH_COMMAND))
            return i + 2
        rest = self.text[i + 1 :].lstrip(" \t")
        names = [w.literal() for w in words if w.literal() != "function"]
        if rest.startswith(")") and len(names) == 1 and names[0] and len(words) <= 2:
            self.sink.function(names[0])  # NAME() { ...; }
            frame.word, frame.words = None, []
            return len(self.text) - len(rest) + 1
        self._end_command(frame)
        frame.depth += 1
        return i + 1

    def _close_paren(self, i: int, frame: Frame) -> int:
        if frame.cases and frame.cases[-1] == "pattern":
            frame.word, frame.words, frame.cases[-1] = None, [], "body"
        elif frame.depth:
            self._end_command(frame)
            frame.depth -= 1
        elif frame.closer == ")":
            self._close()
        else:
            self._end_command(frame)
        return i + 1

    def _cond_operator(self, i: int, frame: Frame) -> int:
        """Inside ``[[ ]]``: ``&& || ( ) < >`` are words; an ``=~`` regex keeps ``( ) |``."""
        char = self.text[i]
        if self.text.startswith("<<", i):  # sh has no [[ ]]: there it is a here-document
            return self._redirect(i, frame)
        regex = frame.words and frame.words[-1].literal() == "=~" and frame.word is not None
        if (regex or frame.regex) and char in "()|":
            frame.regex += {"(": 1, ")": -1}.get(char, 0)
            self._add(char, False)
            return i + 1
        self._end_word(frame)
        size = 2 if self.text[i : i + 2] in ("&&", "||") else 1
        for part in self.text[i : i + size]:
            self._add(part, False)
        self._end_word(frame)
        return i + size

    def _redirect(self, i: int, frame: Frame) -> int:
        text, word = self.text, frame.word
        if word is not None and word.text().isdigit() and not any(word.quoted):
            frame.word = None  # "2>": a file descriptor, not a word
        else:
            self._end_word(frame)
        if text.startswith("<<<", i):
            frame.role = "herestring"
            return i + 3
        if text.startswith("<<", i):
            return self._heredoc(i)
        j = i + 1
        while j < len(text) and text[j] in ">&|":
            j += 1
        # bash expands the target of >& a second time when it is not a number.
        frame.role = "dup" if text[j - 1] == "&" else "redirect"
        return j

    def _heredoc(self, i: int) -> int:
        match = _HEREDOC_WORD_RE.match(self.text, i + 2)
        assert match is not None  # the pattern can match the empty string
        strip_tabs, word = match.group(1), match.group(2)
        for char in word:
            if is_mark(char):
                self.sink.site(char, UNQUOTED, "as part of a here-document delimiter")
        if word:
            delimiter = _unquote_word(word)
            expand = not any(c in word for c in "'\"\\")
            self.docs.append(
                Frame("doc", delimiter=delimiter, strip_tabs=bool(strip_tabs), expand=expand)
            )
        return match.end()

    def _starts_subscript(self, frame: Frame) -> bool:
        """``NAME[`` at the start of a word, or ``[`` starting an element of ``NAME=(...)``."""
        word = frame.word
        if word is None or frame.subscript or frame.cond:
            return False
        if frame.array:
            return self._array_element_start(frame)
        return not any(word.quoted) and IDENT_RE.fullmatch(word.text()) is not None

    @staticmethod
    def _array_element_start(frame: Frame) -> bool:
        word = frame.word
        return bool(frame.array and word and word.text(len(word.items) - 1) in ("(", " "))

    def _equals(self, i: int, frame: Frame) -> int:
        word, size = frame.word, 2 if self.text[i] == "+" else 1
        head = word.text() if word is not None else ""
        assignable = word is not None and word.assign is None and not any(word.quoted)
        if assignable and not frame.subscript and not frame.cond and _is_lvalue(head):
            for char in self.text[i : i + size]:
                self._add(char, False)
            word.assign = len(word.items)  # type: ignore[union-attr]
            if self.text[i + size : i + size + 1] == "(":
                frame.array = 1
                self._add("(", False)
                return i + size + 1
            return i + size
        self._add(self.text[i], False)
        return i + 1


def _is_lvalue(text: str) -> bool:
    """``NAME`` or ``NAME[...]``: what may stand left of ``=`` in an assignment."""
    return re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*(\[.*\])?", text, re.DOTALL) is not None


def _unquote_word(word: str) -> str:
    """A here-document delimiter with its quotes removed, as the shell compares it."""

    def unquote(match: re.Match[str]) -> str:
        escaped, single, double = match.groups()
        if escaped is not None:
            return escaped
        return single if single is not None else re.sub(r"\\(.)", r"\1", double, flags=re.S)

    return _QUOTED_PART_RE.sub(unquote, word)
