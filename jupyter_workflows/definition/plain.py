"""A validated workflow as plain objects, for a process that only runs it: no pydantic.

Importing pydantic and building the model classes is about a third of what ``workflow run``
of a small workflow costs. When the acceptance check is sure the model would accept a file
(``acceptance.checked``), it has computed every value the model would hold, defaults and
normalisations included; ``plain_form`` turns those values into objects that read like the
models: the same fields as attributes, the same methods (both take them from
``behaviour.py``), ``model_fields_set``, and ``model_dump`` with the options the engine uses.
The tests hold the two forms equal on every fixture and on thousands of mutations of them.

A class with no plain form (one that defines methods of its own, such as a loop task, or its
own serializers: ``behaviour`` is null in ``acceptance.json``), or a value a file could hold
that JSON cannot (a YAML date), leaves the workflow to the model: ``plain_form`` returns
None. ``load_workflow`` and everything a user handles keep returning the models.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

from ..plugins import resolve
from . import acceptance
from .acceptance import Fields

_CACHE = "jupyter_workflows.definition.model.Cache"
_PLAIN_DATA = (str, int, bool, type(None))
_LEAVES = frozenset({*_PLAIN_DATA, float})


class NoPlainForm(Exception):
    """Something in the workflow has no plain form: the model holds it."""


def plain_form(checked: Fields) -> Any | None:
    """The workflow the acceptance check returned (``acceptance.checked``) as plain objects,
    or None when some part of it has no plain form."""
    try:
        return _build(checked)
    except (NoPlainForm, OSError, ValueError, KeyError, ImportError, AttributeError):
        return None  # no usable description either: the model holds it


class PlainModel:
    """A model's fields as attributes, built from values already validated."""

    __slots__ = ("__dict__", "_given")
    _node: ClassVar[dict[str, Any]]  # the model's description in acceptance.json
    __hash__ = None  # type: ignore[assignment]  # as a pydantic model: mutable, not hashable

    def __init__(self, fields: dict[str, Any], given: set[str]) -> None:
        self.__dict__.update(fields)
        self._given = frozenset(given)

    @property
    def model_fields_set(self) -> set[str]:
        """The fields the data gave (or a rule of the model set), as pydantic counts them."""
        return set(self._given)

    def model_dump(
        self,
        *,
        mode: str = "python",
        by_alias: bool | None = None,
        exclude: set[str] | None = None,
        exclude_defaults: bool = False,
        exclude_none: bool = False,
        warnings: bool = True,
    ) -> dict[str, Any]:
        """The fields as data, as the model's ``model_dump`` gives them. The values are JSON's
        own types already (``plain_form`` makes sure), so both modes give the same."""
        if mode not in ("python", "json"):
            raise ValueError(f"mode must be 'python' or 'json', got {mode!r}")
        options = (bool(by_alias), exclude_defaults, exclude_none)
        return _dump_model(self, options, set(exclude or ()))

    def _default_cache(self) -> PlainModel:  # TaskBehaviour.cache_config of ``cache: true``
        return _defaults_only(_CACHE)

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self.__dict__ == other.__dict__

    def __repr__(self) -> str:
        fields = ", ".join(
            f"{f['name']}={self.__dict__[f['name']]!r}" for f in self._node["fields"]
        )
        return f"{type(self).__name__}({fields})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (self._node["name"], dict(self.__dict__), set(self._given)))


def _rebuild(name: str, fields: dict[str, Any], given: set[str]) -> PlainModel:
    return _class(name)(fields, given)


_Options = tuple[bool, bool, bool]  # by_alias, exclude_defaults, exclude_none


def _dump_model(model: PlainModel, options: _Options, exclude: set[str]) -> dict[str, Any]:
    by_alias, exclude_defaults, exclude_none = options
    data: dict[str, Any] = {}
    for field in model._node["fields"]:
        name = field["name"]
        if name in exclude:
            continue
        value = model.__dict__[name]
        if exclude_none and value is None:
            continue
        if exclude_defaults and _is_default(value, field["of"]):
            continue
        data[field["alias"] if by_alias and field["alias"] else name] = _dump(value, options)
    return data


def _is_default(value: Any, schema: dict[str, Any]) -> bool:
    # As pydantic compares a value with the field's default: a model by its fields.
    return schema["k"] == "default" and _dump(value, (False, False, False)) == schema["value"]


def _dump(value: Any, options: _Options) -> Any:
    if type(value) in _LEAVES:  # most values: the engine dumps every task (fingerprint.py)
        return value
    if isinstance(value, PlainModel):
        return _dump_model(value, options, set())
    if isinstance(value, list):
        return [_dump(v, options) for v in value]
    if isinstance(value, dict):
        return {k: _dump(v, options) for k, v in value.items()}
    return value


def _build(value: Any) -> Any:
    if isinstance(value, Fields):
        fields = {name: _build(v) for name, v in value.items()}
        return _class(value.model)(fields, value.given)
    if isinstance(value, list):
        return [_build(v) for v in value]
    if isinstance(value, dict):
        return {_plain_key(k): _build(v) for k, v in value.items()}
    if type(value) is float:
        if not math.isfinite(value):  # pydantic's JSON mode writes these as null
            raise NoPlainForm("a number JSON cannot hold")
        return value
    if type(value) not in _PLAIN_DATA:  # a YAML date, bytes...: pydantic's JSON mode differs
        raise NoPlainForm(f"a {type(value).__name__} value")
    return value


def _plain_key(key: Any) -> Any:
    if type(key) is not str:
        raise NoPlainForm("a key that is not text")
    return key


def _defaults_only(name: str) -> PlainModel:
    """The model ``name`` made with no data (``Cache()``): every field its default."""
    fields = {}
    for field in _models()[name]["fields"]:
        schema = field["of"]
        if schema["k"] != "default":
            raise NoPlainForm(f"{name}.{field['name']} has no default")
        fields[field["name"]] = _build(acceptance.fresh(schema["value"]))
    return _class(name)(fields, set())


_classes: dict[str, type[PlainModel]] = {}
_by_name: dict[str, dict[str, Any]] | None = None


def _class(name: str) -> type[PlainModel]:
    cls = _classes.get(name)
    if cls is None:
        node = _models()[name]
        if node.get("behaviour") is None:
            raise NoPlainForm(f"{name} has methods of its own")
        bases = tuple(_behaviour(reference) for reference in node["behaviour"])
        short = name.rpartition(".")[2]
        namespace = {"__slots__": (), "_node": node, "__module__": __name__, "__qualname__": short}
        cls = _classes[name] = type(short, (PlainModel, *bases), namespace)
    return cls


def _behaviour(reference: str) -> type:
    if reference.partition(":")[0] not in acceptance.PURE_MODULES:
        raise NoPlainForm(f"{reference} is not in a module without pydantic")
    return resolve(reference)  # type: ignore[no-any-return]


def _models() -> dict[str, dict[str, Any]]:
    """Every model's description by name (``module.Class``)."""
    global _by_name
    if _by_name is None:
        found: dict[str, dict[str, Any]] = {}
        stack: list[Any] = [acceptance.description()]
        while stack:
            node = stack.pop()
            if isinstance(node, dict):
                if node.get("k") == "model":
                    found[node["name"]] = node
                stack.extend(node.values())
            elif isinstance(node, list):
                stack.extend(node)
        _by_name = found
    return _by_name
