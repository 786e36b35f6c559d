"""Write ``acceptance.json``: the workflow models' core schemas, as plain data for the
acceptance check (``acceptance.py``), which reads it without importing pydantic.

The models stay the single source of the format: this walks the core schema pydantic builds
from them and writes what each node accepts. A node it cannot describe exactly (a validator
function outside ``field_checks``, a constraint it does not know) is written as ``opaque``,
and the acceptance check leaves any file that reaches it to pydantic. A test fails when the
committed file is not what this writes::

    python -m jupyter_workflows.definition.acceptance_build   # rewrites acceptance.json
"""

from __future__ import annotations

import functools
import importlib
import json
import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from ..plugins import TASK_TYPES
from .acceptance import FORMAT, PURE_MODULES, SCHEMA_FILE
from .model import Workflow, validate_task

# Constraints pydantic applies after a function validator, as partials of these.
_BOUNDS = {
    "greater_than_validator": "gt",
    "greater_than_or_equal_validator": "ge",
    "less_than_validator": "lt",
    "less_than_or_equal_validator": "le",
}
_SCALAR_KEYS: dict[str, tuple[str, ...]] = {  # tuples: the file's order is theirs
    "str": ("min_length", "max_length", "pattern"),
    "int": ("ge", "gt", "le", "lt"),
    "float": ("ge", "gt", "le", "lt"),
    "bool": (),
    "any": (),
    "none": (),
}
_IGNORED = {"type", "ref", "metadata", "serialization"}
# Workflow.__init__ only makes the task registry read the entry points (ensure_task_types).
_PLAIN_INITS = {"jupyter_workflows.definition.model.Workflow"}
# What the format's model classes define that concerns building or validating the model, or
# that the plain form has its own of (plain.py). Anything else a model class defines itself
# (a property such as LoopTask.body) has no plain form: its workflows run as models.
_MODEL_ONLY = {"model_rebuild", "model_validate", "__init__", "_default_cache"}


def build() -> dict[str, Any]:
    """The description of the workflow model and of every built-in task type."""
    writer = _Writer()
    root = writer.model_node(Workflow)
    types = {name: TASK_TYPES.load(name) for name in TASK_TYPES.builtin}
    tasks = {name: writer.model_node(kind.model) for name, kind in types.items()}
    keys = {
        name: list(kind.path_keys)
        for name, kind in types.items()
        # not when the type finds its paths its own way (tasks are above this layer: by name)
        if _function_of(kind.path_fields).__qualname__ == "TaskType.path_fields"
    }
    return {
        "format": FORMAT,
        "root": root,
        "tasks": tasks,
        "definitions": writer.definitions,
        "path_keys": keys,
    }


def text() -> str:
    return json.dumps(build(), indent=1, sort_keys=False, allow_nan=False) + "\n"


class _Writer:
    def __init__(self) -> None:
        self.definitions: dict[str, Any] = {}

    def model_node(self, model: type[BaseModel]) -> dict[str, Any]:
        model.model_rebuild(force=True)  # the schema itself, not a validator kept without it
        return self.node(dict(model.__pydantic_core_schema__))

    def node(self, schema: dict[str, Any]) -> dict[str, Any]:
        ref = schema.get("ref")
        if ref is None:
            return self._describe(schema)
        name = re.sub(r":\d+$", "", ref)  # pydantic appends the id() of the class
        if name not in self.definitions:
            self.definitions[name] = None  # being written: recursion refers to it
            self.definitions[name] = self._describe(schema)
        return {"k": "ref", "to": name}

    def _describe(self, schema: dict[str, Any]) -> dict[str, Any]:
        kind = schema["type"]
        describe = getattr(self, "_" + kind.replace("-", "_"), None)
        if kind in _SCALAR_KEYS:
            return self._scalar(kind, schema)
        if describe is None:
            return _opaque(f"a {kind} schema")
        return describe(schema)

    def _scalar(self, kind: str, schema: dict[str, Any]) -> dict[str, Any]:
        unknown = set(schema) - _IGNORED - set(_SCALAR_KEYS[kind])
        if unknown:
            return _opaque(f"{kind} with {sorted(unknown)}")
        return {"k": kind, **{k: schema[k] for k in _SCALAR_KEYS[kind] if k in schema}}

    def _definitions(self, schema: dict[str, Any]) -> dict[str, Any]:
        for definition in schema["definitions"]:
            self.node(definition)
        return self.node(schema["schema"])

    def _definition_ref(self, schema: dict[str, Any]) -> dict[str, Any]:
        return {"k": "ref", "to": re.sub(r":\d+$", "", schema["schema_ref"])}

    def _literal(self, schema: dict[str, Any]) -> dict[str, Any]:
        values = schema["expected"]
        if not all(type(v) in (str, int, bool) for v in values):
            return _opaque("a literal that is not text, an integer or a boolean")
        return {"k": "literal", "values": values}

    def _nullable(self, schema: dict[str, Any]) -> dict[str, Any]:
        return {"k": "nullable", "of": self.node(schema["schema"])}

    def _list(self, schema: dict[str, Any]) -> dict[str, Any]:
        node = {"k": "list", "of": self.node(schema.get("items_schema", {"type": "any"}))}
        return {**node, **_lengths(schema)}

    def _dict(self, schema: dict[str, Any]) -> dict[str, Any]:
        keys = self.node(schema.get("keys_schema", {"type": "any"}))
        values = self.node(schema.get("values_schema", {"type": "any"}))
        return {"k": "dict", "keys": keys, "values": values, **_lengths(schema)}

    def _union(self, schema: dict[str, Any]) -> dict[str, Any]:
        choices = [c[0] if isinstance(c, tuple) else c for c in schema["choices"]]
        return {"k": "union", "of": [self.node(c) for c in choices]}

    def _tagged_union(self, schema: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(schema["discriminator"], str):
            return _opaque("a union discriminated by a path")
        choices = {tag: self.node(choice) for tag, choice in schema["choices"].items()}
        return {"k": "tagged", "key": schema["discriminator"], "choices": choices}

    def _default(self, schema: dict[str, Any]) -> dict[str, Any]:
        if schema.get("validate_default") or schema.get("default_factory_takes_data"):
            return _opaque("a default that is validated or made from the data")
        factory = schema.get("default_factory")
        value = factory() if factory is not None else schema["default"]
        if isinstance(value, BaseModel):
            value = value.model_dump()  # a model is its fields to the acceptance check
        try:
            json.dumps(value, allow_nan=False)
        except (TypeError, ValueError):
            return _opaque(f"a default that is not plain data: {value!r}")
        return {"k": "default", "value": value, "of": self.node(schema["schema"])}

    def _model(self, schema: dict[str, Any]) -> dict[str, Any]:
        cls = schema["cls"]
        name = f"{cls.__module__}.{cls.__qualname__}"
        if schema.get("root_model") or schema.get("post_init"):
            return _opaque(f"{name}: a root model or one with post-init")
        if schema.get("custom_init") and name not in _PLAIN_INITS:
            return _opaque(f"{name}: its own __init__")
        config = schema.get("config", {})
        if config.get("strict") or schema["schema"]["type"] != "model-fields":
            return _opaque(f"{name}: strict, or not made of fields")
        inner = schema["schema"]
        extra = inner.get("extra_behavior") or config.get("extra_fields_behavior") or "ignore"
        fields = []
        for field_name, field in inner["fields"].items():
            alias = field.get("validation_alias")
            if alias is not None and not isinstance(alias, str):
                return _opaque(f"{name}.{field_name}: an alias path")
            fields.append({"name": field_name, "alias": alias, "of": self.node(field["schema"])})
        # A serializer of its own (or of a field) makes model_dump differ from the fields.
        serialized = _mentions(inner, "serialization")
        return {
            "k": "model",
            "name": name,
            "behaviour": None if serialized else _behaviour(cls),
            "extra": extra,
            "by_name": config.get("validate_by_name", False),
            "by_alias": config.get("validate_by_alias", True),
            "fields": fields,
        }

    def _function_before(self, schema: dict[str, Any]) -> dict[str, Any]:
        return self._function("before", schema)

    def _function_after(self, schema: dict[str, Any]) -> dict[str, Any]:
        function = schema["function"]["function"]
        if isinstance(function, functools.partial) and function.func.__name__ in _BOUNDS:
            (bound,) = function.keywords.values()
            op = _BOUNDS[function.func.__name__]
            return {"k": "bound", "op": op, "value": bound, "of": self.node(schema["schema"])}
        rule = getattr(function, "__rule__", None)
        if rule is not None:
            reference = _reference(rule)
            if reference is None:
                return _opaque(f"the model rule {_name(rule)} is not in field_checks")
            return {"k": "rule", "fn": reference, "of": self.node(schema["schema"])}
        return self._function("after", schema)

    def _function_plain(self, schema: dict[str, Any]) -> dict[str, Any]:
        if schema["function"]["function"] is validate_task:
            return {"k": "task"}
        return _opaque("a plain validator function")

    def _function(self, kind: str, schema: dict[str, Any]) -> dict[str, Any]:
        function = schema["function"]["function"]
        reference = _reference(function)
        if reference is None:
            return _opaque(f"the validator {_name(function)} is not in field_checks")
        with_info = schema["function"]["type"] == "with-info"
        return {"k": kind, "fn": reference, "info": with_info, "of": self.node(schema["schema"])}


def _behaviour(cls: type[BaseModel]) -> list[str] | None:
    """``module:Class`` of each class giving ``cls`` its methods, all in pure modules, for
    the plain form (plain.py) to take them from; None when ``cls`` has methods elsewhere."""
    found = []
    for klass in cls.__mro__:
        if klass is object or klass.__module__.startswith("pydantic"):
            continue
        if issubclass(klass, BaseModel):
            decorators = klass.__pydantic_decorators__
            if decorators.field_serializers or decorators.model_serializers:
                return None  # its model_dump is its own
            if decorators.computed_fields:
                return None
            validators = {
                *decorators.validators,
                *decorators.field_validators,
                *decorators.model_validators,
            }  # in the core schema: described as rules and functions
            for name, value in vars(klass).items():
                method = callable(value) or isinstance(value, (property, classmethod))
                if method and name not in _MODEL_ONLY and name not in validators:
                    return None
        elif klass.__module__ in PURE_MODULES:
            found.append(f"{klass.__module__}:{klass.__qualname__}")
        else:
            return None
    return found


def _mentions(schema: Any, key: str) -> bool:
    if isinstance(schema, dict):
        return key in schema or any(_mentions(v, key) for v in schema.values())
    if isinstance(schema, (list, tuple)):
        return any(_mentions(v, key) for v in schema)
    return False


def _reference(function: Any) -> str | None:
    """``module:name`` of a function the acceptance check may call, else None."""
    module, name = getattr(function, "__module__", None), getattr(function, "__qualname__", "")
    if module not in PURE_MODULES or "." in name:
        return None
    if getattr(importlib.import_module(module), name, None) is not function:
        return None
    return f"{module}:{name}"


def _function_of(method: Any) -> Any:
    return getattr(method, "__func__", method)


def _name(function: Any) -> str:
    name = getattr(function, "__qualname__", None) or type(function).__qualname__
    return f"{getattr(function, '__module__', '?')}.{name}"


def _lengths(schema: dict[str, Any]) -> dict[str, Any]:
    return {k: schema[k] for k in ("min_length", "max_length") if k in schema}


def _opaque(why: str) -> dict[str, Any]:
    return {"k": "opaque", "why": why}


if __name__ == "__main__":
    Path(SCHEMA_FILE).write_text(text())
    print(f"wrote {SCHEMA_FILE}")
