"""The lexer's core: its state, the dispatch, marks, and the expansions inside words.

``LexerCore`` reads ``$name``, ``${...}`` (name, subscript, offset, operator word),
``$(...)``, ``$((...))``, ``$[...]``, backquotes and here-document bodies; ``shell_lexer.Lexer``
adds the command level (words, operators, quotes, redirections) on top of it.
"""

from __future__ import annotations

from .shell_words import (
    ANSI,
    ANSI_QUOTE,
    ARITH,
    ARITH_COMMAND,
    ARITH_NAME_RE,
    DOUBLE,
    IDENT_RE,
    IN_BACKQUOTES,
    INERT,
    NAME,
    NUMBER,
    OPERATORS,
    SINGLE,
    SPECIAL,
    SUBSCRIPT,
    UNQUOTED,
    Expansion,
    Frame,
    Sink,
    Word,
    is_mark,
)


class LexerCore:
    """A left-to-right state machine over a command; the command level is in the subclass."""

    def __init__(self, text: str, sink: Sink, lost: str | None = None) -> None:
        self.text = text
        self.sink = sink
        self.frames = [Frame("cmd")]
        self.docs: list[Frame] = []  # here-documents whose body has not started yet
        self.lost = lost  # once set, every later mark is refused with this reason

    def run(self) -> Frame:
        """Lex the whole text; the top frame, with every name and mark read, is returned."""
        i = 0
        while i < len(self.text):
            i = self._step(i)
        while len(self.frames) > 1:
            self._close()
        self._end_command(self.frames[0])
        return self.frames[0]

    def _step(self, i: int) -> int:
        frame, char = self.frames[-1], self.text[i]
        if frame.kind == "doc" and (i == 0 or self.text[i - 1] == "\n"):
            after_line = self._doc_line(i, frame)
            if after_line is not None:
                return after_line
        if frame.kind == "tick":
            return self._tick(i, frame)
        if is_mark(char):
            self._mark(char)
            return i + 1
        if frame.kind == "cmd":
            if frame.quote == UNQUOTED:
                return self._unquoted(i, frame)
            return self._quoted(i, frame)
        if frame.kind == "arith":
            return self._arith(i, frame)
        if frame.kind == "param":
            return self._param(i, frame)
        return self._doc_char(i, frame)

    @staticmethod
    def _arithmetic(frame: Frame) -> bool:
        if frame.kind == "arith":
            return True
        return frame.kind == "param" and (
            frame.phase in ("sub", "offset") or (frame.phase == "word" and frame.outer == ARITH)
        )

    def _refusal(self, frame: Frame) -> str | None:
        if self.lost:
            return self.lost
        if any(f.kind == "doc" for f in self.frames):
            return "inside a here-document (pass it through a variable: v=${...}, then $v)"
        if frame.quote == ANSI:
            return "inside $'...' quoting"
        if frame.kind == "param" and frame.phase == "word" and frame.outer == DOUBLE:
            return 'inside "${...}" (assign it to a variable first: v=${...}, then "$${X:-$v}")'
        if frame.kind == "param" and frame.phase in ("start", "name"):
            return "as a variable name in ${...}"
        return None

    def _mark(self, char: str, refused: str | None = None) -> None:
        frame = self.frames[-1]
        refused = refused or self._refusal(frame)
        arithmetic = self._arithmetic(frame)
        in_subscript = frame.kind == "cmd" and frame.subscript > 0
        quote = ARITH if arithmetic or in_subscript else frame.quote
        self.sink.site(char, quote, refused)
        if arithmetic or in_subscript:
            self.sink.need({char}, NUMBER, frame.why if arithmetic else SUBSCRIPT)
        self._add(char, quote != UNQUOTED)

    def _add(self, item: str | Expansion, quoted: bool) -> None:
        """Append to what the current frame collects: its word, and its names and marks."""
        frame = self.frames[-1]
        if isinstance(item, Expansion):
            frame.marks |= item.marks
            frame.names |= item.names
            if self._arithmetic(frame) or (frame.kind == "cmd" and frame.subscript):
                why = frame.why if self._arithmetic(frame) else SUBSCRIPT
                self.sink.need(item.marks, NUMBER, why)
                self.sink.use(item.names, NUMBER, why)
        elif is_mark(item):
            frame.marks.add(item)
        if frame.kind == "cmd":
            word = self._word(frame)
            word.items.append(item)
            word.quoted.append(quoted)

    @staticmethod
    def _word(frame: Frame) -> Word:
        if frame.word is None:
            frame.word = Word(role=frame.role)
            frame.role = "arg"
        return frame.word

    def _backslash(self, i: int, frame: Frame) -> int:
        """``\\X``: which characters a backslash protects depends on the quoting."""
        nxt = self.text[i + 1 : i + 2]
        if nxt == "\n":
            return i + 2  # a line continuation vanishes
        if is_mark(nxt):
            self._mark(nxt, "right after a backslash")
            return i + 2
        in_quotes = frame.quote != UNQUOTED or frame.kind != "cmd"
        special = "$`\\" if frame.kind == "doc" else '$`"\\'
        if not nxt or (in_quotes and nxt not in special):
            self._add("\\", in_quotes)
        if nxt:
            self._add(nxt, True)
        return i + 2

    # ------------------------------------------------------------------ the command level

    def _unquoted(self, i: int, frame: Frame) -> int:
        raise NotImplementedError

    def _quoted(self, i: int, frame: Frame) -> int:
        raise NotImplementedError

    def _end_word(self, frame: Frame) -> None:
        raise NotImplementedError

    def _end_command(self, frame: Frame, *, new_pipeline: bool = True) -> None:
        raise NotImplementedError

    # ------------------------------------------------------------------ $ and nesting

    def _dollar(self, i: int, frame: Frame) -> int:
        text = self.text
        nxt, quoted = text[i + 1 : i + 2], frame.quote != UNQUOTED
        if text.startswith("$((", i):
            self.frames.append(Frame("arith", "))", why="inside $((...))"))
            return i + 3
        if nxt == "(":
            self.frames.append(Frame("cmd", ")"))
            return i + 2
        if nxt == "[":  # obsolete bash arithmetic; sh reads it as plain words
            self.lost = (
                self.lost or "after $[...], which only bash reads as arithmetic (use $((...)))"
            )
            self.frames.append(Frame("arith", "]", why="inside $[...]"))
            return i + 2
        if nxt == "{":
            outer = DOUBLE
            if self._arithmetic(frame):
                outer = ARITH
            elif not quoted and (frame.kind == "cmd" or frame.outer == UNQUOTED):
                outer = UNQUOTED if frame.kind != "doc" else DOUBLE
            self.frames.append(Frame("param", "}", outer=outer, why=frame.why))
            return i + 2
        plain_word = frame.kind == "param" and frame.phase == "word" and frame.outer == UNQUOTED
        if nxt in ("'", '"') and not quoted and (frame.kind == "cmd" or plain_word):
            if frame.kind == "cmd":
                self._word(frame)
            frame.quote = ANSI if nxt == "'" else DOUBLE
            return i + 2
        name = IDENT_RE.match(text, i + 1)
        if name:
            self._add(Expansion(frozenset({name.group()})), quoted)
            return name.end()
        if nxt and (nxt.isdigit() or nxt in "@*"):
            self._add(Expansion(frozenset({"@"})), quoted)
            return i + 2
        if nxt and nxt in SPECIAL:
            self._add(Expansion(), quoted)
            return i + 2
        if is_mark(nxt):
            self._mark(nxt, "right after a $")
            return i + 2
        self._add("$", quoted)
        return i + 1

    def _close(self) -> None:
        """Pop the innermost frame; what it read becomes one expansion in its parent."""
        frame = self.frames.pop()
        if frame.kind == "doc":
            return
        if frame.kind == "cmd":
            self._end_command(frame)
        names = set(frame.names)
        if frame.kind == "arith":
            names = set()  # the result is a number
        if frame.kind == "param":
            if frame.indirect:
                self.sink.use({frame.name}, NAME, "in ${!...}, whose value names a variable")
                names.add("*")
            if frame.length:
                names = set()
            elif frame.name and (frame.name[0].isdigit() or frame.name in ("@", "*")):
                names.add("@")
            elif frame.name and frame.name not in SPECIAL:
                names.add(frame.name)
        parent = self.frames[-1]
        self._add(Expansion(frozenset(names), frozenset(frame.marks)), parent.quote != UNQUOTED)
        if frame.closer == "))" and parent.word is not None and parent.word.role == "arith":
            self._end_word(parent)

    def _tick(self, i: int, frame: Frame) -> int:
        """Backquotes: collected as written, lexed again as a command when they close."""
        char, nxt = self.text[i], self.text[i + 1 : i + 2]
        if char == "\\" and nxt in ("$", "`", "\\"):
            frame.raw.append(nxt)
            return i + 2
        if char == "`":
            self.frames.pop()
            inner = type(self)("".join(frame.raw), self.sink, self.lost or IN_BACKQUOTES).run()
            frame.names, frame.marks = inner.names, inner.marks
            self.frames.append(frame)
            self._close()
            return i + 1
        frame.raw.append(char)
        return i + 1

    def _arith(self, i: int, frame: Frame) -> int:
        text, char = self.text, self.text[i]
        if char in "'\"":  # bash skips quoted text looking for the end, dash does not
            self.lost = (
                self.lost
                or "after a quote inside shell arithmetic, which sh and bash read differently"
            )
            return i + 1
        if char == "\\":
            return self._backslash(i, frame)
        if char == "$":
            return self._dollar(i, frame)
        if char == "`":
            self.frames.append(Frame("tick", "`"))
            return i + 1
        if text.startswith("<<", i) and frame.why == ARITH_COMMAND:
            self.lost = self.lost or "after << inside ((...)), which sh reads as a here-document"
        name = ARITH_NAME_RE.match(text, i)
        if name:
            self.sink.use({name.group()}, NUMBER, frame.why)
            return name.end()
        if char in "([":
            frame.depth += 1
        elif char in ")]" and frame.depth:
            frame.depth -= 1
        elif char == "]" and frame.closer == "]":
            self._close()
        elif char == ")" and frame.closer == "))":
            self._close()
            return i + (2 if text[i + 1 : i + 2] == ")" else 1)
        return i + 1

    def _param(self, i: int, frame: Frame) -> int:
        """``${...}``: a name, then a subscript, an offset (arithmetic) or an operator word."""
        text, char = self.text, self.text[i]
        nxt = text[i + 1 : i + 2]
        if frame.phase == "start":
            frame.phase = "name"
            if char == "(":  # zsh's ${(e)...} and ${(P)...} evaluate the value
                why = "in a zsh ${(flags)...} expansion, which can evaluate the value"
                self.sink.use({"*"}, INERT, why)
                frame.names.add("*")
                frame.phase = "word"
                return i + 1
            if char == "!" and nxt not in ("}", ""):
                frame.indirect = True
                return i + 1
            if char == "#" and nxt and nxt not in ("}", "-", "=", "?", "+", ":"):
                frame.length = True
                return i + 1
        if frame.phase == "name":
            grown = frame.name + char
            if (
                IDENT_RE.fullmatch(grown)
                or grown.isdigit()
                or (not frame.name and char in "@*" + SPECIAL)
            ):
                frame.name = grown
                return i + 1
            frame.phase = "after"
        if frame.phase == "after":
            if char == "}":
                self._close()
                return i + 1
            if char == "[":
                frame.phase, frame.why = "sub", "in an array subscript ${NAME[...]}"
                return i + 1
            if char == ":" and nxt not in ("-", "=", "?", "+"):
                frame.phase, frame.why = "offset", "in the offset of ${NAME:offset:length}"
                return i + 1
            frame.phase = "word"
            return i + (2 if text[i : i + 2] in OPERATORS else 1)
        if frame.phase in ("sub", "offset"):
            if char == "]" and frame.phase == "sub" and not frame.depth:
                frame.phase = "after"
                return i + 1
            if char == "}" and frame.phase == "offset" and not frame.depth:
                self._close()
                return i + 1
            return self._arith(i, frame)
        return self._param_word(i, frame)

    def _param_word(self, i: int, frame: Frame) -> int:
        char = self.text[i]
        if frame.quote in (SINGLE, ANSI):
            if char == "\\" and frame.quote == ANSI:
                if self.text[i + 1 : i + 2] == "'":
                    self.lost = self.lost or ANSI_QUOTE
                return i + 2
            frame.quote = UNQUOTED if char == "'" else frame.quote
        elif char in "'\"" and frame.outer != UNQUOTED:
            # sh and bash read quotes inside "${...}" differently: stop trusting the parse.
            self.lost = self.lost or 'after a quote inside "${...}", which sh and bash differ on'
        elif char == '"':
            frame.quote = UNQUOTED if frame.quote == DOUBLE else DOUBLE
        elif char == "'" and frame.quote == UNQUOTED:
            frame.quote = SINGLE
        elif char == "\\":
            return self._backslash(i, frame)
        elif char == "$":
            return self._dollar(i, frame)
        elif char == "`":
            self.frames.append(Frame("tick", "`"))
        elif char == "}" and frame.quote == UNQUOTED:
            self._close()
        return i + 1

    def _doc_line(self, i: int, frame: Frame) -> int | None:
        """At the start of a body line: the delimiter line ends the body."""
        end = self.text.find("\n", i)
        end = len(self.text) if end < 0 else end
        line = self.text[i:end]
        if (line.lstrip("\t") if frame.strip_tabs else line) == frame.delimiter:
            self.frames.pop()
            if self.docs:
                self.frames.append(self.docs.pop(0))
            return end + 1
        if frame.expand:
            return None
        for char in line:
            if is_mark(char):
                self._mark(char)
        return end + 1

    def _doc_char(self, i: int, frame: Frame) -> int:
        char = self.text[i]
        if char == "\\":
            return self._backslash(i, frame)
        if char == "$":
            return self._dollar(i, frame)
        if char == "`":
            self.frames.append(Frame("tick", "`"))
        return i + 1
