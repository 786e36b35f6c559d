"""``condition`` expressions: a small language parsed and evaluated here, never by ``eval``.

``${env.DEPLOY_ENABLED} == 'true' && ${tasks.build.exit_code} == 0``: comparisons, ``&&``,
``||``, ``!``, parentheses, quoted strings, numbers, ``true``/``false``/``null`` and ``${...}``
references resolved against a ``templates.Scope``.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import ExpressionError
from .limits import MAX_CONDITION_DEPTH
from .templates import Reference, Scope, parse_reference, to_text

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
        ref = parse_reference(text, i)
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
            ref = parse_reference(text, i)
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


def _conjunction(symbol: str, operands: list[Evaluator]) -> Evaluator:
    # Short-circuit, so `${tasks.a.status} == 'succeeded' && ${tasks.a.result.x}` is safe.
    # One evaluator for the whole chain: `a && b && ...` nests no deeper however long it is.
    if len(operands) == 1:
        return operands[0]
    if symbol == "&&":
        return lambda scope: all(truthy(operand(scope)) for operand in operands)
    return lambda scope: any(truthy(operand(scope)) for operand in operands)


def _comparison(symbol: str, left: Evaluator, right: Evaluator) -> Evaluator:
    return lambda scope: _compare(symbol, left(scope), right(scope))


class _Parser:
    """Recursive descent over the grammar in ``parse_condition``; '(' and '!' nest at most
    ``MAX_CONDITION_DEPTH`` deep, so neither parsing nor evaluating can exhaust the stack."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokenize(text)
        self.index = 0
        self.depth = 0

    def _nest(self, token: _Token) -> None:
        self.depth += 1
        if self.depth > MAX_CONDITION_DEPTH:
            raise ExpressionError(
                f"nested deeper than {MAX_CONDITION_DEPTH} levels of '(' and '!'",
                self.text,
                token.position,
            )

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
        operands = [self._and()]
        while self._accept("||"):
            operands.append(self._and())
        return _conjunction("||", operands)

    def _and(self) -> Evaluator:
        operands = [self._not()]
        while self._accept("&&"):
            operands.append(self._not())
        return _conjunction("&&", operands)

    def _not(self) -> Evaluator:
        token = self._peek()
        if self._accept("!"):
            self._nest(token)
            inner = _negation(self._not())
            self.depth -= 1
            return inner
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
            self._nest(token)
            inner = self._or()
            self.depth -= 1
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
