"""Whether the workflow model would accept some data, decided without importing pydantic.

Importing pydantic and the model classes is most of what ``workflow validate`` of a small
file costs (about 60% of the process). ``accepts`` walks a description of the models' core
schemas (``acceptance.json``, written from the models by ``acceptance_build.py``) and calls
the models' own validator functions (``field_checks.py``). It answers True only where the
model would accept the data for certain: anything it is not sure of (a type pydantic might
coerce, a task type from a plugin, a node the description marks opaque, two union members
accepting differently) is False, and the caller then asks the model, which also says why.
An error it finds is therefore never reported from here: pydantic reports it.

It checks strictly (no coercion of "5" to 5), which is what files written by hand give:
JSON and YAML values are already the types the model wants.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

from ..plugins import TASK_TYPES, resolve

FORMAT = 2
SCHEMA_FILE = Path(__file__).with_name("acceptance.json")
# The only modules whose functions (and, for plain.py, classes) the description may name:
# none imports pydantic.
PURE_MODULES = (
    "jupyter_workflows.definition.field_checks",
    "jupyter_workflows.definition.behaviour",
)
# The walk takes about 20 us a task, the model's compiled validator about 7 once pydantic
# and the model are imported (some 60 ms): past a few thousand tasks the model is quicker.
MOST_TASKS = 1000

_NOTHING = object()
# Nodes around another ("of", or "to" for a ref), which a default is not run through.
_WRAPPERS = ("ref", "default", "nullable", "before", "after", "bound", "rule")
_MAX_INT = 2**63  # pydantic-core's own integers; bigger ones take another path: not sure
_MAX_EXACT_FLOAT = 2**53


def path_keys(kind: str) -> list[str] | None:
    """The ``path_keys`` of a built-in task type that finds its paths by them alone, as its
    class declares them (``tasks/paths.py`` reads them here so as not to import the type's
    module, and with it pydantic); None for any other type."""
    try:
        keys = description()["path_keys"].get(kind)
    except (OSError, ValueError):  # no usable description: the type's module says
        return None
    return keys if keys is not None and TASK_TYPES.is_builtin(kind) else None


class _Rejected(Exception):
    """The model would reject the data here, for certain."""


class _Unsure(Exception):
    """The model might accept or reject the data here; only pydantic can tell."""


def accepts(data: Any) -> bool:
    """True when ``Workflow.model_validate(data)`` would certainly succeed."""
    return checked(data) is not None


def checked(data: Any) -> Fields | None:
    """The workflow as the model would hold it, when ``Workflow.model_validate(data)`` would
    certainly succeed: each model a ``Fields`` (its values by field name, defaults included,
    the names given, and the model's name), else None."""
    try:
        described = description()
        return _Checker(described).check(described["root"], data)  # type: ignore[no-any-return]
    except Exception:  # unsure, rejected, or a validator that failed another way: ask pydantic
        return None


_loaded: dict[str, Any] | None = None


def description() -> dict[str, Any]:
    """The models as ``acceptance.json`` describes them; raises OSError or ValueError when
    the file cannot be used."""
    global _loaded
    if _loaded is None:  # two threads may both read it: the same file, the same result
        found = json.loads(SCHEMA_FILE.read_text())
        if found.get("format") != FORMAT:
            raise ValueError(f"{SCHEMA_FILE} is of format {found.get('format')}")
        _loaded = found
    return _loaded


class _Info:
    """What a with-info validator reads of pydantic's ``ValidationInfo``."""

    context = None
    mode = "python"

    def __init__(self, data: dict[str, Any], field_name: str | None) -> None:
        self.data = data
        self.field_name = field_name


class Fields(dict):  # type: ignore[type-arg]
    """A model's validated fields by name, the names the data gave or its rules set
    (``given``, pydantic's ``model_fields_set``) and the model's name (``module.Class``)."""

    given: set[str]
    model: str


_functions: dict[str, Any] = {}


def _function(reference: str) -> Any:
    function = _functions.get(reference)
    if function is None:
        if reference.partition(":")[0] not in PURE_MODULES:
            raise _Unsure(reference)
        function = _functions[reference] = resolve(reference)
    return function


def fresh(value: Any) -> Any:
    """A copy of a default, so that a rule normalising it in place cannot change the next."""
    if isinstance(value, dict):
        return {k: fresh(v) for k, v in value.items()}
    if isinstance(value, list):
        return [fresh(v) for v in value]
    return value


def _mismatch(value: Any, what: str, never: tuple[type, ...] = (dict, list)) -> Exception:
    """Why ``value`` is not ``what``: for certain when it is of a kind pydantic never turns
    into one (``never``, or null), else maybe (it might coerce "5", 1.0, True...)."""
    if isinstance(value, never) or value is None:
        return _Rejected(f"not {what}")
    return _Unsure(f"{what} of another type or size")


def _text(value: Any) -> str:
    if type(value) is not str:
        raise _mismatch(value, "text")
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate: pydantic rejects it, in its own words
            raise _Unsure("not valid unicode") from None
    return value


_patterns: dict[str, re.Pattern[str]] = {}


class _Checker:
    def __init__(self, description: dict[str, Any]) -> None:
        self.definitions = description["definitions"]
        self.tasks = description["tasks"]
        self.info = _Info({}, None)  # the innermost model's fields so far, for with-info ones

    def check(self, node: dict[str, Any], value: Any) -> Any:
        """``value`` as the model would hold it (models as ``Fields``); raises when not sure."""
        return getattr(self, "_" + node["k"])(node, value)

    def _ref(self, node: dict[str, Any], value: Any) -> Any:
        return self.check(self.definitions[node["to"]], value)

    def _opaque(self, node: dict[str, Any], value: Any) -> Any:
        raise _Unsure(node["why"])

    def _any(self, node: dict[str, Any], value: Any) -> Any:
        return value

    def _none(self, node: dict[str, Any], value: Any) -> Any:
        if value is not None:
            raise _Unsure("not null")
        return None

    def _str(self, node: dict[str, Any], value: Any) -> Any:
        value = _text(value)
        if "min_length" in node and len(value) < node["min_length"]:
            raise _Rejected("too short")
        if "max_length" in node and len(value) > node["max_length"]:
            raise _Rejected("too long")
        pattern = node.get("pattern")
        if pattern is not None:
            if "\n" in value:  # Python's $ matches before a final newline, Rust's does not
                raise _Unsure("a line break under a pattern")
            compiled = _patterns.get(pattern)
            if compiled is None:
                compiled = _patterns[pattern] = re.compile(pattern)
            if not compiled.search(value):
                raise _Unsure("does not match the pattern")
        return value

    def _int(self, node: dict[str, Any], value: Any) -> Any:
        if type(value) is not int or not -_MAX_INT < value < _MAX_INT:
            raise _mismatch(value, "an integer")
        return self._bounds(node, value)

    def _float(self, node: dict[str, Any], value: Any) -> Any:
        if type(value) is int and -_MAX_EXACT_FLOAT < value < _MAX_EXACT_FLOAT:
            value = float(value)
        elif type(value) is not float or not math.isfinite(value):
            raise _mismatch(value, "a number")
        return self._bounds(node, value)

    def _bounds(self, node: dict[str, Any], value: Any) -> Any:
        if (
            ("ge" in node and not value >= node["ge"])
            or ("gt" in node and not value > node["gt"])
            or ("le" in node and not value <= node["le"])
            or ("lt" in node and not value < node["lt"])
        ):
            raise _Rejected("out of bounds")
        return value

    def _bound(self, node: dict[str, Any], value: Any) -> Any:
        value = self.check(node["of"], value)
        return self._bounds({node["op"]: node["value"]}, value)

    def _bool(self, node: dict[str, Any], value: Any) -> Any:
        if type(value) is not bool:
            raise _mismatch(value, "a boolean")
        return value

    def _literal(self, node: dict[str, Any], value: Any) -> Any:
        for expected in node["values"]:
            if type(value) is type(expected) and value == expected:
                return value
        raise _mismatch(value, "one of the literals")

    def _nullable(self, node: dict[str, Any], value: Any) -> Any:
        return None if value is None else self.check(node["of"], value)

    def _list(self, node: dict[str, Any], value: Any) -> Any:
        if type(value) is not list:
            raise _mismatch(value, "a list", (dict, str, int, float))
        self._lengths(node, value)
        item = node["of"]
        return [self.check(item, v) for v in value]

    def _dict(self, node: dict[str, Any], value: Any) -> Any:
        if type(value) is not dict:
            raise _mismatch(value, "a mapping", (list, str, int, float))
        self._lengths(node, value)
        keys, values = node["keys"], node["values"]
        return {self.check(keys, k): self.check(values, v) for k, v in value.items()}

    def _lengths(self, node: dict[str, Any], value: Any) -> None:
        if "min_length" in node and len(value) < node["min_length"]:
            raise _Rejected("too few")
        if "max_length" in node and len(value) > node["max_length"]:
            raise _Rejected("too many")

    def _union(self, node: dict[str, Any], value: Any) -> Any:
        accepted: list[Any] = []
        for choice in node["of"]:
            try:
                accepted.append(self.check(choice, value))
            except (_Rejected, ValueError, AssertionError):
                continue
        # pydantic picks among the members that accept (by exactness, then order): sure
        # only when they all make the same value.
        if not accepted or any(a != accepted[0] for a in accepted[1:]):
            raise _Unsure("no member, or members that differ")
        return accepted[0]

    def _tagged(self, node: dict[str, Any], value: Any) -> Any:
        if type(value) is not dict:
            raise _Unsure("a tagged member that is not a mapping")
        choice = node["choices"].get(value.get(node["key"]))
        if choice is None:
            raise _Rejected("an unknown tag")
        return self.check(choice, value)

    def _task(self, node: dict[str, Any], value: Any) -> Any:
        if type(value) is not dict:  # data, not a task model: validate_task refuses it
            raise _Rejected("a task that is not a mapping")
        tag = value.get("type")
        if type(tag) is not str:
            raise _Rejected("a task without a type name")
        if tag not in self.tasks or not TASK_TYPES.is_builtin(tag):
            raise _Unsure("a task type this description does not hold")
        return self.check(self.tasks[tag], value)

    def _default(self, node: dict[str, Any], value: Any) -> Any:
        return self.check(node["of"], value)

    def _model(self, node: dict[str, Any], value: Any) -> Any:
        if type(value) is not dict:
            raise _mismatch(value, "a mapping", (list, str, int, float))
        if not all(type(key) is str for key in value):
            raise _Unsure("a key that is not text")
        fields = Fields()
        fields.given = set()
        fields.model = node["name"]
        used: set[str] = set()
        outer = self.info
        for field in node["fields"]:
            name, alias, schema = field["name"], field["alias"], field["of"]
            by_alias = node["by_alias"] and alias is not None and alias in value
            by_name = (node["by_name"] or alias is None) and name in value
            if by_alias and by_name:
                raise _Unsure("a field given by its name and its alias")
            if by_alias or by_name:
                key = alias if by_alias else name
                used.add(key)
                if schema["k"] == "default":
                    schema = schema["of"]
                self.info = _Info(fields, name)
                try:
                    fields[name] = self.check(schema, value[key])
                finally:
                    self.info = outer
                fields.given.add(name)
            elif schema["k"] == "default":
                fields[name] = self.default(schema["of"], fresh(schema["value"]))
            else:
                raise _Rejected(f"{name} is missing")
        if len(used) != len(value) and node["extra"] != "ignore":
            raise _Rejected("a key the model does not have")
        if node["extra"] == "allow":
            raise _Unsure("extra keys kept")
        return fields

    def default(self, node: dict[str, Any], value: Any) -> Any:
        """A field's default as the model holds it: a model default (``Defaults()``), written
        in the description as its fields, is a model none of whose fields were given."""
        while node["k"] in _WRAPPERS and value is not None:
            node = self.definitions[node["to"]] if node["k"] == "ref" else node["of"]
        if node["k"] == "model" and type(value) is dict:
            fields = Fields()
            fields.given, fields.model = set(), node["name"]
            for field in node["fields"]:
                if field["name"] in value:
                    fields[field["name"]] = self.default(field["of"], value[field["name"]])
            return fields
        if node["k"] == "list" and type(value) is list:
            return [self.default(node["of"], v) for v in value]
        if node["k"] == "dict" and type(value) is dict:
            return {k: self.default(node["values"], v) for k, v in value.items()}
        return value

    def _before(self, node: dict[str, Any], value: Any) -> Any:
        return self._function(node, value)

    def _after(self, node: dict[str, Any], value: Any) -> Any:
        return self._function(node, value)

    def _function(self, node: dict[str, Any], value: Any) -> Any:
        function, info = _function(node["fn"]), self.info
        call = (lambda v: function(v, info)) if node["info"] else function
        try:
            if node["k"] == "before":
                return self.check(node["of"], call(value))
            return call(self.check(node["of"], value))
        except (ValueError, AssertionError) as exc:
            raise _Rejected(str(exc)) from None

    def _rule(self, node: dict[str, Any], value: Any) -> Any:
        fields = self.check(node["of"], value)
        before = dict(fields)
        try:
            _function(node["fn"])(fields, fields.given)
        except (ValueError, AssertionError) as exc:
            raise _Rejected(str(exc)) from None
        # What the rule changed counts as set, as the model's setattr counts it (_ModelRule).
        fields.given.update(k for k, v in fields.items() if v is not before.get(k, _NOTHING))
        return fields
