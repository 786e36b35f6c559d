"""Alert conditions and templates in the original format's style, evaluated here, never by eval.

``execution.status === 'failed'``, ``metrics.successRate < 90``,
``execution.duration > workflow.expected_duration * 2``: JavaScript-style expressions over dotted
names. The language: ``===`` ``!==`` ``==`` ``!=`` ``<`` ``<=`` ``>`` ``>=``, ``&&`` ``||`` ``!``,
``+`` ``-`` ``*`` ``/`` ``%``, parentheses, numbers, strings in ``'`` or ``"``,
``true``/``false``/``null``, and names from ``NAMES``. Precedence and results follow JavaScript:
``===`` compares type and value, ``==`` lets a number equal numeric text, ``&&``/``||`` give
one of their operands, and arithmetic or ordering with a missing value (null) gives null/false,
so a rule over an unset ``workflow.expected_duration`` never fires.

Templates (``Workflow ${workflow.name} failed: ${error.message}``) put the same names in text.
Unknown names and syntax errors are ``ExpressionError`` with the position, found when the
workflow is validated.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import ExpressionError
from .limits import MAX_CONDITION_DEPTH

# What alert conditions and templates may name; monitor/custom_alerts.py fills them in.
NAMES: dict[str, tuple[str, ...]] = {
    "execution": ("id", "status", "state", "duration", "error", "workflow"),
    "workflow": ("name", "version", "description", "expected_duration"),
    "metrics": ("successRate", "totalRuns", "successfulRuns", "failedRuns"),
    "error": ("message", "task"),
}

Evaluator = Callable[[Mapping[str, Any]], Any]

_SYMBOLS = ("===", "!==", "==", "!=", "<=", ">=", "&&", "||", "<", ">", "!", "(", ")",
            "+", "-", "*", "/", "%")  # fmt: skip
_NUMBER = re.compile(r"(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_NAME = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*(?:\.[A-Za-z_$][A-Za-z0-9_$]*)*")
_TEMPLATE = re.compile(r"\$\{([^}]*)\}")
_CONSTANTS: dict[str, Any] = {"true": True, "false": False, "null": None, "undefined": None}


@dataclass(frozen=True)
class _Token:
    kind: str  # "op", "num", "str", "name", "const", "end"
    value: Any
    position: int


def check_name(name: str, text: str, position: int) -> None:
    """Raise ``ExpressionError`` unless ``name`` (``execution.status``) is one of ``NAMES``."""
    root, _, rest = name.partition(".")
    if root not in NAMES:
        known = ", ".join(NAMES)
        raise ExpressionError(f"unknown name '{name}': names start with {known}", text, position)
    if rest not in NAMES[root]:
        fields = ", ".join(NAMES[root])
        raise ExpressionError(f"unknown name '{name}'; {root} has {fields}", text, position)


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char.isspace():
            i += 1
        elif char in "'\"":
            end = i + 1
            chars: list[str] = []
            while end < len(text) and text[end] != char:
                if text[end] == "\\" and end + 1 < len(text):
                    end += 1
                chars.append(text[end])
                end += 1
            if end >= len(text):
                raise ExpressionError(f"unterminated string: missing closing {char}", text, i)
            tokens.append(_Token("str", "".join(chars), i))
            i = end + 1
        elif number := _NUMBER.match(text, i):
            literal = number.group()
            value = float(literal) if any(c in literal for c in ".eE") else int(literal)
            tokens.append(_Token("num", value, i))
            i = number.end()
        elif name := _NAME.match(text, i):
            word = name.group()
            if word in _CONSTANTS:
                tokens.append(_Token("const", _CONSTANTS[word], i))
            else:
                check_name(word, text, i)
                tokens.append(_Token("name", word, i))
            i = name.end()
        else:
            symbol = next((s for s in _SYMBOLS if text.startswith(s, i)), None)
            if symbol is None:
                hint = ": use '===' or '==' to compare" if char == "=" else ""
                raise ExpressionError(f"unexpected {char!r}{hint}", text, i)
            tokens.append(_Token("op", symbol, i))
            i += len(symbol)
    tokens.append(_Token("end", None, len(text)))
    return tokens


def _number(value: Any) -> float | None:
    """JavaScript's ToNumber for the values conditions meet; None for NaN."""
    if value is None:
        return None
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)):
        return None if math.isnan(value) else value
    if isinstance(value, str):
        try:
            return float(value.strip()) if value.strip() else 0.0
        except ValueError:
            return None
    return None


def truthy(value: Any) -> bool:
    """JavaScript truthiness: false for null, false, 0, NaN and ''."""
    if value is None or value is False or value == "":
        return False
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value != 0 and not math.isnan(value)
    return True


def _strict_equal(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    return type(a) is type(b) and a == b


def _loose_equal(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, str) and isinstance(b, str):
        return a == b
    x, y = _number(a), _number(b)
    return x is not None and y is not None and x == y


def _order(symbol: str, a: Any, b: Any) -> bool:
    if isinstance(a, str) and isinstance(b, str):
        x: Any = a
        y: Any = b
    else:
        x, y = _number(a), _number(b)
        if x is None or y is None or a is None or b is None:
            return False  # NaN (or a missing value) is never ordered
    return {"<": x < y, "<=": x <= y, ">": x > y, ">=": x >= y}[symbol]


def _arithmetic(symbol: str, a: Any, b: Any) -> Any:
    if symbol == "+" and (isinstance(a, str) or isinstance(b, str)):
        return _text(a) + _text(b)
    x, y = _number(a), _number(b)
    if x is None or y is None or a is None or b is None:
        return None
    if symbol == "+":
        return x + y
    if symbol == "-":
        return x - y
    if symbol == "*":
        return x * y
    if y == 0:  # JavaScript gives Infinity or NaN: nothing a rule can compare usefully
        return None
    return x / y if symbol == "/" else math.fmod(x, y)


def _text(value: Any) -> str:
    """How a value reads in a template: numbers without a needless '.0'."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else f"{value:.2f}".rstrip("0")
    return str(value)


def _lookup(scope: Mapping[str, Any], name: str) -> Any:
    value: Any = scope
    for part in name.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    return value


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokenize(text)
        self.index = 0
        self.depth = 0

    def _peek(self) -> _Token:
        return self.tokens[self.index]

    def _accept(self, *symbols: str) -> str | None:
        token = self._peek()
        if token.kind == "op" and token.value in symbols:
            self.index += 1
            return str(token.value)
        return None

    def parse(self) -> Evaluator:
        if self._peek().kind == "end":
            raise ExpressionError("empty condition", self.text, 0)
        root = self._or()
        token = self._peek()
        if token.kind != "end":
            raise ExpressionError(f"unexpected {_describe(token)}", self.text, token.position)
        return root

    def _binary(
        self,
        symbols: tuple[str, ...],
        operand: Callable[[], Evaluator],
        combine: Callable[[str, Evaluator, Evaluator], Evaluator],
    ) -> Evaluator:
        left = operand()
        while symbol := self._accept(*symbols):
            left = combine(symbol, left, operand())
        return left

    def _or(self) -> Evaluator:
        return self._binary(("||",), self._and, _logical)

    def _and(self) -> Evaluator:
        return self._binary(("&&",), self._equality, _logical)

    def _equality(self) -> Evaluator:
        return self._binary(("===", "!==", "==", "!="), self._relational, _equality)

    def _relational(self) -> Evaluator:
        return self._binary(("<=", ">=", "<", ">"), self._additive, _relational)

    def _additive(self) -> Evaluator:
        return self._binary(("+", "-"), self._multiplicative, _arith)

    def _multiplicative(self) -> Evaluator:
        return self._binary(("*", "/", "%"), self._unary, _arith)

    def _unary(self) -> Evaluator:
        token = self._peek()
        symbol = self._accept("!", "-")
        if symbol is None:
            return self._atom()
        self.depth += 1
        if self.depth > MAX_CONDITION_DEPTH:
            raise ExpressionError(
                f"nested deeper than {MAX_CONDITION_DEPTH} levels", self.text, token.position
            )
        inner = self._unary()
        self.depth -= 1
        if symbol == "!":
            return lambda scope: not truthy(inner(scope))
        return lambda scope: _arithmetic("-", 0, inner(scope))

    def _atom(self) -> Evaluator:
        token = self._peek()
        self.index += 1
        if token.kind == "op" and token.value == "(":
            self.depth += 1
            if self.depth > MAX_CONDITION_DEPTH:
                raise ExpressionError(
                    f"nested deeper than {MAX_CONDITION_DEPTH} levels", self.text, token.position
                )
            inner = self._or()
            self.depth -= 1
            if not self._accept(")"):
                found = self._peek()
                raise ExpressionError(
                    f"expected ')' to close the '(' at {token.position}, found "
                    f"{_describe(found)}", self.text, found.position,
                )  # fmt: skip
            return inner
        if token.kind == "name":
            name = str(token.value)
            return lambda scope: _lookup(scope, name)
        if token.kind in ("num", "str", "const"):
            value = token.value
            return lambda scope: value
        raise ExpressionError(f"expected a value, found {_describe(token)}", self.text,
                              token.position)  # fmt: skip


def _logical(symbol: str, left: Evaluator, right: Evaluator) -> Evaluator:
    if symbol == "&&":
        return lambda scope: (lambda a: right(scope) if truthy(a) else a)(left(scope))
    return lambda scope: (lambda a: a if truthy(a) else right(scope))(left(scope))


def _equality(symbol: str, left: Evaluator, right: Evaluator) -> Evaluator:
    equal = _strict_equal if symbol in ("===", "!==") else _loose_equal
    negate = symbol.startswith("!")
    return lambda scope: equal(left(scope), right(scope)) != negate


def _relational(symbol: str, left: Evaluator, right: Evaluator) -> Evaluator:
    return lambda scope: _order(symbol, left(scope), right(scope))


def _arith(symbol: str, left: Evaluator, right: Evaluator) -> Evaluator:
    return lambda scope: _arithmetic(symbol, left(scope), right(scope))


def _describe(token: _Token) -> str:
    if token.kind == "end":
        return "the end"
    if token.kind == "str":
        return "a string"
    return repr(token.value) if token.kind in ("op", "name") else f"value {token.value!r}"


class JsCondition:
    """A parsed condition; ``holds(scope)`` evaluates it against nested mappings."""

    def __init__(self, text: str) -> None:
        self.text = text
        self._root = _Parser(text).parse()

    def holds(self, scope: Mapping[str, Any]) -> bool:
        return truthy(self._root(scope))


def parse_js_condition(text: str) -> JsCondition:
    """Parse ``text``; raises ``ExpressionError`` (with the position) when it is not valid."""
    return JsCondition(text)


def check_template(text: str) -> None:
    """Raise ``ExpressionError`` for a ``${name}`` in ``text`` that is not one of ``NAMES``."""
    for match in _TEMPLATE.finditer(text):
        check_name(match.group(1).strip(), text, match.start())


def render_template(text: str, scope: Mapping[str, Any]) -> str:
    """``text`` with each ``${name}`` replaced by its value (nothing for a missing one)."""
    return _TEMPLATE.sub(lambda m: _text(_lookup(scope, m.group(1).strip())), text)
