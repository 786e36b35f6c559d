"""``${...}`` templates and ``condition`` expressions: parse, resolve, render, evaluate.

Templates appear in strings (``"deploy ${tasks.build.result.version}"``) and conditions
(``${env.DEPLOY_ENABLED} == 'true' && ${tasks.build.exit_code} == 0``). Nothing here uses
``eval``: references are parsed by hand and values always stay data.

Reference forms (names and keys are ``[A-Za-z0-9_-]+``, whitespace inside the braces is
allowed)::

    ${env.NAME}                         environment variable ("" when unset)
    ${secret.NAME}                      secret
    ${tasks.ID.result[.path...]}        a finished task's result; digits index lists
    ${tasks.ID.outputs.KEY[.path...]}   one of its outputs
    ${tasks.ID.exit_code|status|error|duration|started_at}
    ${webhook.payload[.path...]}        the webhook trigger's context
    ${item} ${item.field} ${input}      variables (loop items, inputs, any bound name)

A bare ``${name}`` is always a variable; ``${name.more}`` is a scope lookup when ``name`` is
``env``, ``tasks``, ``secret`` or ``webhook``, else a variable with a path. ``$${`` is a
literal ``${``.
"""

from __future__ import annotations

import json
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from .errors import ExpressionError

__all__ = [
    "SCOPES",
    "TASK_FIELDS",
    "Condition",
    "Reference",
    "Scope",
    "TaskView",
    "UnresolvedReference",
    "find_references",
    "parse_condition",
    "parse_template",
    "render",
    "render_shell",
    "render_value",
    "to_text",
    "truthy",
]

SCOPES = frozenset({"env", "tasks", "secret", "webhook"})
TASK_FIELDS = ("result", "exit_code", "status", "outputs", "error", "duration", "started_at")
# Fields that are plain values: a path below them can never resolve, so it is a parse error.
_LEAF_FIELDS = frozenset({"exit_code", "status", "error", "duration", "started_at"})

_MARK_RE = re.compile(r"\$?\$\{")  # "${" opens a reference, "$${" is the escape for it
_BAD_NAME_CHAR_RE = re.compile(r"[^A-Za-z0-9_-]")


# --------------------------------------------------------------------------- references


@dataclass(frozen=True)
class Reference:
    """One ``${...}`` found in a string, with where it was."""

    scope: str  # "env" | "tasks" | "secret" | "webhook" | "var"
    path: tuple[str, ...]  # env/secret: (NAME,); tasks: (ID, field, ...); var: (name, ...)
    text: str  # the original "${...}" text
    start: int  # offset of "$" in the source string
    end: int  # offset just after "}"

    @property
    def task_id(self) -> str | None:
        """The task this reference reads, for the ``tasks`` scope."""
        return self.path[0] if self.scope == "tasks" else None

    @property
    def task_field(self) -> str | None:
        """``result``, ``exit_code``, ... for the ``tasks`` scope."""
        return self.path[1] if self.scope == "tasks" else None

    def __str__(self) -> str:
        return self.text


class UnresolvedReference(ExpressionError):
    """A reference that parses but names nothing in the scope (unknown task, key, ...)."""

    def __init__(self, message: str, reference: Reference):
        self.reference = reference
        super().__init__(message, reference.text)

    def __reduce__(self) -> tuple[Any, ...]:
        # Keeps the error picklable (results travel between processes on a cluster).
        return (type(self), (self.reason, self.reference))


def _parse_reference(source: str, start: int) -> Reference:
    """Parse the ``${...}`` that begins at ``source[start]``."""
    close = source.find("}", start + 2)
    if close < 0:
        raise ExpressionError("unclosed '${': expected '}'", source, start)
    body = source[start + 2 : close]
    if not body.strip():
        raise ExpressionError("empty reference '${}'", source, start)
    segments = body.strip().split(".")
    _check_names(segments, source, start + 2 + len(body) - len(body.lstrip()))
    scope, path = _classify(segments, source, start)
    return Reference(scope, path, source[start : close + 1], start, close + 1)


def _check_names(segments: list[str], source: str, position: int) -> None:
    """Every dotted part must be a non-empty ``[A-Za-z0-9_-]+`` name."""
    for segment in segments:
        if not segment:
            raise ExpressionError("empty name in reference (stray '.')", source, position)
        bad = _BAD_NAME_CHAR_RE.search(segment)
        if bad:
            char = bad.group()
            hint = " (missing '}'?)" if char in "${" else ""
            raise ExpressionError(
                f"invalid character {char!r} in reference: names use letters, digits, "
                f"'-' and '_'{hint}",
                source,
                position + bad.start(),
            )
        position += len(segment) + 1


def _classify(segments: list[str], source: str, start: int) -> tuple[str, tuple[str, ...]]:
    """Decide the scope: ``${x}`` is a variable, ``${env.X}`` a scope, ``${x.y}`` a path."""
    head, rest = segments[0], tuple(segments[1:])
    if not rest or head not in SCOPES:
        return "var", tuple(segments)
    if head in ("env", "secret") and len(rest) != 1:
        raise ExpressionError(
            f"'{head}' references take exactly one name, as in ${{{head}.NAME}}", source, start
        )
    if head == "tasks":
        _check_task_path(rest, source, start)
    return head, rest


def _check_task_path(path: tuple[str, ...], source: str, start: int) -> None:
    """``tasks.ID.FIELD[...]``: the field must exist and leaf fields take no path."""
    fields = ", ".join(TASK_FIELDS)
    if len(path) < 2:
        raise ExpressionError(
            f"missing field after task id '{path[0]}': use ${{tasks.{path[0]}.result}} "
            f"(fields: {fields})",
            source,
            start,
        )
    if path[1] not in TASK_FIELDS:
        raise ExpressionError(f"unknown task field '{path[1]}' (fields: {fields})", source, start)
    if path[1] in _LEAF_FIELDS and len(path) > 2:
        raise ExpressionError(f"task field '{path[1]}' has no sub-fields", source, start)


def _scan(text: str) -> list[str | Reference]:
    """Split a template into literal text (escapes applied) and references, in order."""
    parts: list[str | Reference] = []
    literal: list[str] = []
    position = 0
    while match := _MARK_RE.search(text, position):
        literal.append(text[position : match.start()])
        if match.group() == "$${":
            literal.append("${")
            position = match.end()
            continue
        reference = _parse_reference(text, match.start())
        # Adjacent literal pieces are joined so the shell scanner sees real neighbours.
        if any(literal):
            parts.append("".join(literal))
        literal = []
        parts.append(reference)
        position = reference.end
    literal.append(text[position:])
    if any(literal):
        parts.append("".join(literal))
    return parts


def find_references(text: str) -> list[Reference]:
    """Every ``${...}`` reference in ``text``; raises ``ExpressionError`` on a bad one."""
    return [part for part in _scan(text) if isinstance(part, Reference)]


parse_template = find_references


# --------------------------------------------------------------------------- resolution


@dataclass
class TaskView:
    """What templates may read from a task (pending until it finishes)."""

    result: Any = None
    exit_code: int | None = None
    status: str = "pending"
    outputs: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    duration: float | None = None  # seconds
    started_at: float | str | None = None


@dataclass
class Scope:
    """Everything a template can resolve against; ``child`` adds variables for loops."""

    env: Mapping[str, str]
    tasks: Mapping[str, TaskView] = field(default_factory=dict)
    variables: Mapping[str, Any] = field(default_factory=dict)
    secrets: Mapping[str, str] = field(default_factory=dict)
    # The webhook trigger's context, e.g. {"payload": <parsed body>, "headers": {...}}.
    webhook: Mapping[str, Any] | None = None

    def resolve(self, ref: Reference) -> Any:
        """The typed value of ``ref``; raises ``UnresolvedReference`` when it names nothing."""
        if ref.scope == "env":
            return self.env.get(ref.path[0], "")
        if ref.scope == "secret":
            if ref.path[0] not in self.secrets:
                raise UnresolvedReference(f"unknown secret '{ref.path[0]}'", ref)
            return self.secrets[ref.path[0]]
        if ref.scope == "tasks":
            return self._resolve_task(ref)
        if ref.scope == "webhook":
            if self.webhook is None:
                raise UnresolvedReference("no webhook: this run was not triggered by one", ref)
            return _walk(self.webhook, ref.path, ref, "webhook")
        name = ref.path[0]
        if name not in self.variables:
            raise UnresolvedReference(
                f"unknown variable '{name}'{_known('bound', self.variables)}", ref
            )
        return _walk(self.variables[name], ref.path[1:], ref, name)

    def child(self, **variables: Any) -> Scope:
        """This scope plus ``variables`` (which shadow same-named ones); loops nest."""
        return replace(self, variables={**self.variables, **variables})

    def _resolve_task(self, ref: Reference) -> Any:
        task_id, task_field, *path = ref.path
        view = self.tasks.get(task_id)
        if view is None:
            raise UnresolvedReference(f"unknown task '{task_id}'{_known('known', self.tasks)}", ref)
        walked = f"tasks.{task_id}.{task_field}"
        if task_field == "outputs" and path:
            key, *path = path
            if key not in view.outputs:
                known = _known("outputs", view.outputs)
                raise UnresolvedReference(f"task '{task_id}' has no output '{key}'{known}", ref)
            return _walk(view.outputs[key], path, ref, f"{walked}.{key}")
        return _walk(getattr(view, task_field), path, ref, walked)


def _walk(value: Any, path: tuple[str, ...] | list[str], ref: Reference, walked: str) -> Any:
    """Follow dict keys and list indexes (digits) from ``value``."""
    for key in path:
        if isinstance(value, Mapping):
            if key not in value:
                raise UnresolvedReference(f"no key '{key}' in {walked}{_known('keys', value)}", ref)
            value = value[key]
        elif isinstance(value, (list, tuple)):
            if not (key.isdigit() and int(key) < len(value)):
                raise UnresolvedReference(
                    f"no index '{key}' in {walked} (a list of {len(value)} item(s))", ref
                )
            value = value[int(key)]
        else:
            kind = "null" if value is None else type(value).__name__
            raise UnresolvedReference(f"cannot look up '{key}' in {walked}: it is {kind}", ref)
        walked = f"{walked}.{key}"
    return value


def _known(label: str, names: Mapping[str, Any]) -> str:
    """A short ``" (label: a, b, c)"`` hint for error messages."""
    if not names:
        return ""
    shown = sorted(str(name) for name in names)
    more = ", ..." if len(shown) > 10 else ""
    return f" ({label}: {', '.join(shown[:10])}{more})"


# --------------------------------------------------------------------------- rendering


def to_text(value: Any) -> str:
    """The text form of a value: JSON for objects and lists, ``true``/``false``, ``""`` for null."""
    if isinstance(value, str):
        return str.__str__(value)  # the plain text, even for str enums such as State
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return int.__repr__(value)
    if isinstance(value, float):
        return float.__repr__(value)
    if isinstance(value, (Mapping, list, tuple)):
        data = dict(value) if isinstance(value, Mapping) else value
        return json.dumps(data, separators=(",", ":"), ensure_ascii=False, default=str)
    return str(value)


def render(text: str, scope: Scope) -> str:
    """``text`` with every reference replaced by ``to_text`` of its value."""
    return "".join(
        part if isinstance(part, str) else to_text(scope.resolve(part)) for part in _scan(text)
    )


def render_value(value: Any, scope: Scope) -> Any:
    """Render strings inside dicts and lists (keys too); other values pass through.

    A string that is exactly one reference gives the typed value, so
    ``items: "${tasks.list.result}"`` renders to the list itself.
    """
    if isinstance(value, str):
        parts = _scan(value)
        if len(parts) == 1 and isinstance(parts[0], Reference) and parts[0].text == value:
            return scope.resolve(parts[0])
        return render(value, scope)
    if isinstance(value, Mapping):
        return {
            (render(key, scope) if isinstance(key, str) else key): render_value(item, scope)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [render_value(item, scope) for item in value]
    if isinstance(value, tuple):
        return tuple(render_value(item, scope) for item in value)
    return value


# --------------------------------------------------------------------------- shell

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
    for part in _scan(command):
        if isinstance(part, str):
            context.feed(part)
            rendered.append(part)
        else:
            rendered.append(context.quote(to_text(scope.resolve(part)), part))
    return "".join(rendered)


# --------------------------------------------------------------------------- conditions

Evaluator = Callable[[Scope], Any]

_FALSY_TEXT = frozenset({"", "false", "0", "no", "off"})
_SYMBOLS = ("||", "&&", "==", "!=", "<=", ">=", "!", "<", ">", "(", ")")  # longest first
_COMPARISONS = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
_CONSTANTS: dict[str, Any] = {"true": True, "false": False, "null": None}
_NUMBER_RE = re.compile(r"-?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_NUMERIC_TEXT_RE = re.compile(r"\s*[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?\s*")
_WORD_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
_STRAY_HINTS = {
    "=": "use '==' to compare",
    "|": "use '||' for or",
    "&": "use '&&' for and",
    "$": "a reference is written ${...}",
}


def truthy(value: Any) -> bool:
    """False for null, false, 0, empty text/list/object and "false"/"0"/"no"/"off"; else True."""
    if value is None or value is False:
        return False
    if isinstance(value, str):
        return value.strip().lower() not in _FALSY_TEXT
    if isinstance(value, (int, float)):
        return value != 0
    if isinstance(value, (Mapping, list, tuple)):
        return len(value) > 0
    return True


@dataclass(frozen=True)
class _Token:
    kind: str  # "op", "ref", "str", "num", "const" or "end"
    value: Any
    position: int


def _tokenize(text: str) -> list[_Token]:
    """Split a condition into tokens; references and strings are parsed here."""
    tokens: list[_Token] = []
    i = 0
    while i < len(text):
        if text[i].isspace():
            i += 1
            continue
        token, i = _next_token(text, i)
        tokens.append(token)
    tokens.append(_Token("end", None, len(text)))
    return tokens


def _next_token(text: str, i: int) -> tuple[_Token, int]:
    if text.startswith("${", i):
        ref = _parse_reference(text, i)
        return _Token("ref", ref, i), ref.end
    if text[i] in "'\"":
        return _lex_string(text, i)
    for symbol in _SYMBOLS:
        if text.startswith(symbol, i):
            return _Token("op", symbol, i), i + len(symbol)
    if number := _NUMBER_RE.match(text, i):
        literal = number.group()
        value = float(literal) if any(c in literal for c in ".eE") else int(literal)
        return _Token("num", value, i), number.end()
    if word := _WORD_RE.match(text, i):
        if word.group() in _CONSTANTS:
            return _Token("const", _CONSTANTS[word.group()], i), word.end()
        name = word.group()
        raise ExpressionError(
            f"unknown word {name!r}: write a reference as ${{{name}}} or text as '{name}'", text, i
        )
    hint = _STRAY_HINTS.get(text[i], "")
    raise ExpressionError(f"unexpected {text[i]!r}" + (f": {hint}" if hint else ""), text, i)


def _lex_string(text: str, start: int) -> tuple[_Token, int]:
    """A quoted string: backslash takes the next character literally; ``${...}`` interpolates."""
    quote, i = text[start], start + 1
    parts: list[str | Reference] = []
    buffer: list[str] = []
    while i < len(text):
        char = text[i]
        if char == quote:
            parts.append("".join(buffer))
            return _Token("str", tuple(p for p in parts if p), start), i + 1
        if char == "\\" and i + 1 < len(text):
            buffer.append(text[i + 1])
            i += 2
        elif text.startswith("$${", i):
            buffer.append("${")
            i += 3
        elif text.startswith("${", i):
            ref = _parse_reference(text, i)
            parts += ["".join(buffer), ref]
            buffer = []
            i = ref.end
        else:
            buffer.append(char)
            i += 1
    raise ExpressionError(f"unterminated string: missing closing {quote}", text, start)


def _as_number(value: Any) -> int | float | None:
    """A number, or text that reads as one; booleans are not numbers."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, str) and _NUMERIC_TEXT_RE.fullmatch(value):
        return float(value)
    return None


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _compare(symbol: str, left: Any, right: Any) -> bool:
    """Numbers compare numerically (with numeric text); everything else by its text form."""
    a, b = _as_number(left), _as_number(right)
    # For equality two texts stay texts ("1.0" != "1"); a number on one side makes it numeric.
    ordering = symbol not in ("==", "!=")
    if a is not None and b is not None and (ordering or _is_number(left) or _is_number(right)):
        return bool(_COMPARISONS[symbol](a, b))
    return bool(_COMPARISONS[symbol](to_text(left), to_text(right)))


def _constant(value: Any) -> Evaluator:
    return lambda scope: value


def _reference(ref: Reference) -> Evaluator:
    return lambda scope: scope.resolve(ref)


def _interpolated(parts: tuple[str | Reference, ...]) -> Evaluator:
    # References in a string literal are spliced in as text at evaluation, never re-parsed.
    def evaluate(scope: Scope) -> str:
        return "".join(p if isinstance(p, str) else to_text(scope.resolve(p)) for p in parts)

    return evaluate


def _negation(inner: Evaluator) -> Evaluator:
    return lambda scope: not truthy(inner(scope))


def _conjunction(symbol: str, left: Evaluator, right: Evaluator) -> Evaluator:
    # Short-circuit, so `${tasks.a.status} == 'succeeded' && ${tasks.a.result.x}` is safe.
    if symbol == "&&":
        return lambda scope: truthy(left(scope)) and truthy(right(scope))
    return lambda scope: truthy(left(scope)) or truthy(right(scope))


def _comparison(symbol: str, left: Evaluator, right: Evaluator) -> Evaluator:
    return lambda scope: _compare(symbol, left(scope), right(scope))


class _Parser:
    """Recursive descent over the grammar in ``parse_condition``."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokenize(text)
        self.index = 0

    def parse(self) -> Evaluator:
        if self._peek().kind == "end":
            raise ExpressionError("empty condition", self.text, 0)
        root = self._or()
        token = self._peek()
        if token.kind != "end":
            raise ExpressionError(
                f"unexpected {_describe(token)}: expected '&&', '||' or the end",
                self.text,
                token.position,
            )
        return root

    def _peek(self) -> _Token:
        return self.tokens[self.index]

    def _accept(self, symbol: str) -> bool:
        token = self.tokens[self.index]
        if token.kind == "op" and token.value == symbol:
            self.index += 1
            return True
        return False

    def _or(self) -> Evaluator:
        left = self._and()
        while self._accept("||"):
            left = _conjunction("||", left, self._and())
        return left

    def _and(self) -> Evaluator:
        left = self._not()
        while self._accept("&&"):
            left = _conjunction("&&", left, self._not())
        return left

    def _not(self) -> Evaluator:
        if self._accept("!"):
            return _negation(self._not())
        return self._cmp()

    def _cmp(self) -> Evaluator:
        left = self._atom()
        token = self._peek()
        if token.kind == "op" and token.value in _COMPARISONS:
            self.index += 1
            return _comparison(token.value, left, self._atom())
        return left

    def _atom(self) -> Evaluator:
        token = self._peek()
        self.index += 1
        if token.kind == "op" and token.value == "(":
            inner = self._or()
            if not self._accept(")"):
                found = _describe(self._peek())
                raise ExpressionError(
                    f"expected ')' to close the '(' at {token.position}, found {found}",
                    self.text,
                    self._peek().position,
                )
            return inner
        if token.kind == "ref":
            return _reference(token.value)
        if token.kind == "str":
            return _interpolated(token.value)
        if token.kind in ("num", "const"):
            return _constant(token.value)
        raise ExpressionError(
            f"expected a value, found {_describe(token)}", self.text, token.position
        )


def _describe(token: _Token) -> str:
    if token.kind == "end":
        return "the end"
    if token.kind == "ref":
        return f"reference {token.value.text}"
    if token.kind == "str":
        return "a string"
    return repr(token.value) if token.kind == "op" else f"value {to_text(token.value) or 'null'}"


class Condition:
    """A parsed condition; ``evaluate`` it against a scope as often as needed."""

    __slots__ = ("_root", "references", "source")

    def __init__(self, source: str, references: list[Reference], root: Evaluator) -> None:
        self.source = source
        self.references = references  # every reference, string literals included, in order
        self._root = root

    def evaluate(self, scope: Scope) -> bool:
        """True when the condition holds; raises ``UnresolvedReference`` for a missing value."""
        return truthy(self._root(scope))

    def __repr__(self) -> str:
        return f"Condition({self.source!r})"


def parse_condition(text: str) -> Condition:
    """Parse a condition; raises ``ExpressionError`` (with position) on bad syntax.

    Grammar::

        or   := and ('||' and)*
        and  := not ('&&' not)*
        not  := '!' not | cmp
        cmp  := atom (('==' | '!=' | '<' | '<=' | '>' | '>=') atom)?
        atom := '(' or ')' | ${reference} | 'string' | "string" | number | true | false | null

    Strings take backslash escapes (the next character is literal) and may contain
    references, interpolated as text. ``==``/``!=`` compare numerically when one side is a
    number and the other a number or numeric text, else by text form (``true`` for booleans,
    ``""`` for null, JSON for objects); ``<``... compare numerically when both sides read as
    numbers, else as text. A condition that is a single value is judged by ``truthy``.
    """
    parser = _Parser(text)
    root = parser.parse()
    references: list[Reference] = []
    for token in parser.tokens:
        if token.kind == "ref":
            references.append(token.value)
        elif token.kind == "str":
            references.extend(p for p in token.value if isinstance(p, Reference))
    return Condition(text, references, root)
