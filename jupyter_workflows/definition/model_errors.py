"""Pydantic's validation errors as findings: located in the data (without the union tags and
branch labels pydantic adds to ``loc``), with messages that say what to write instead.

Imported only when the model rejected something (``loader`` reaches it lazily), so that a
valid file is checked without importing pydantic (``acceptance.py``).
"""

from __future__ import annotations

import json
import sys
import types
from dataclasses import dataclass
from typing import Annotated, Any, ForwardRef, Union, get_args, get_origin

from pydantic import BaseModel
from pydantic import ValidationError as PydanticValidationError

from . import validate
from .locate import Finding
from .model import ANY_TASK_TYPE, Task, TaskBase, Workflow, task_models

_MISSING = object()


@dataclass
class _Spot:
    """Where one pydantic error points, followed through the data and the model together."""

    path: tuple[Any, ...]  # in the data
    site: tuple[Any, ...] | None  # where a union branch label appeared, if one did
    label: str | None  # that label ("str", "list[int]", "tagged-union[...]")
    annotation: Any  # the model type at ``path``
    holder: Any  # the mapping holding the last key of ``path``, and its model type
    holder_annotation: Any
    value: Any


def translate(exc: PydanticValidationError, data: dict[str, Any]) -> list[Finding]:
    """One finding per pydantic error, with a union's failed branches merged into one."""
    findings: list[Finding] = []
    unions: dict[tuple[Any, ...], dict[str, list[tuple[Any, _Spot]]]] = {}
    for error in exc.errors(include_url=False):
        spot = _follow(error, data)
        if spot.site is None or spot.label is None:
            findings.append(_finding(error, spot))
        else:
            unions.setdefault(spot.site, {}).setdefault(spot.label, []).append((error, spot))
    for site, branches in unions.items():
        findings += _union_findings(site, branches)
    return findings


def _follow(error: Any, data: Any) -> _Spot:
    loc, missing = error["loc"], error["type"] == "missing"
    annotation: Any = Workflow
    node, holder, holder_annotation = data, None, None
    path: list[Any] = []
    site, label, tagged = None, None, False
    for i, elem in enumerate(loc):
        last = i == len(loc) - 1
        is_dict = isinstance(node, dict)
        if is_dict and not tagged and elem == node.get("type") and not (last and missing):
            tagged, annotation = True, _tags(annotation).get(elem)  # the discriminator's tag
        elif is_dict and elem in node:
            holder, holder_annotation = node, annotation
            node, annotation = node[elem], _field_type(annotation, elem)
            path.append(elem)
            tagged = False
        elif isinstance(node, list) and isinstance(elem, int) and 0 <= elem < len(node):
            node, annotation, tagged = node[elem], _item_type(annotation), False
            path.append(elem)
        elif last and missing:
            holder, holder_annotation, node = node, annotation, _MISSING
            path.append(elem)
        elif site is None:  # a union member's label: not in the data
            site, label = tuple(path), str(elem)
    return _Spot(tuple(path), site, label, annotation, holder, holder_annotation, node)


def _members(annotation: Any) -> list[Any]:
    """The alternatives of a (possibly Annotated, Optional or forward-referenced) type."""
    if isinstance(annotation, ForwardRef):
        annotation = annotation.__forward_arg__
    if isinstance(annotation, str):
        # the model module's own annotation text, evaluated as typing.get_type_hints would
        try:
            annotation = eval(annotation, vars(sys.modules[Workflow.__module__]))  # noqa: S307
        except Exception:  # a hint we cannot resolve only costs a suggestion
            return []
    origin = get_origin(annotation)
    if origin is Annotated:
        if ANY_TASK_TYPE in annotation.__metadata__:  # a task of any registered type
            return list(task_models().values())
        return _members(get_args(annotation)[0])
    if origin is Union or origin is types.UnionType:
        return [m for arg in get_args(annotation) for m in _members(arg)]
    return [annotation]


def _models(annotation: Any) -> list[type[BaseModel]]:
    return [m for m in _members(annotation) if isinstance(m, type) and issubclass(m, BaseModel)]


def _field_type(annotation: Any, key: Any) -> Any:
    models = _models(annotation)
    if len(models) == 1:
        for name, info in models[0].model_fields.items():
            if key in (name, info.alias):
                # pydantic keeps a field's own Annotated metadata apart from its type
                return Task if ANY_TASK_TYPE in info.metadata else info.annotation
    return None


def _item_type(annotation: Any) -> Any:
    for member in _members(annotation):
        if get_origin(member) is list:
            return get_args(member)[0]
    return None


def _tags(annotation: Any) -> dict[str, type[BaseModel]]:
    """The ``type`` values of a discriminated union, each with its model."""
    tags: dict[str, type[BaseModel]] = {}
    for model in _models(annotation):
        info = model.model_fields.get("type")
        for value in get_args(info.annotation) if info else ():
            tags.setdefault(value, model)
    return tags


def _finding(error: Any, spot: _Spot) -> Finding:
    message, path = _message(error, spot)
    return Finding(message, path)


def _message(error: Any, spot: _Spot) -> tuple[str, tuple[Any, ...]]:
    kind, msg, ctx = error["type"], error["msg"], error.get("ctx") or {}
    name = spot.path[-1] if spot.path else None
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        what = "trigger" if spot.path == ("trigger",) else "task"
        tags = list(_tags(spot.annotation))
        expected = f"; expected one of {', '.join(tags)}" if tags else ""
        if kind == "union_tag_not_found":
            return f"missing 'type'{expected}", (*spot.path, "type")
        tag = str(ctx.get("tag"))
        message = f"unknown {what} type '{tag}'{expected}" + validate.did_you_mean(tag, tags)
        return message, (*spot.path, "type")
    if kind == "extra_forbidden":
        suggestion = validate.did_you_mean(str(name), _field_names(spot))
        return f"unknown field '{name}'{suggestion}", spot.path
    if kind == "missing":
        return f"missing required field '{name}'", spot.path
    if kind == "string_pattern_mismatch" and name in ("id", "item"):
        what = "task id" if name == "id" else "loop variable name"
        return f"invalid {what} {spot.value!r}; use only letters, digits, '-' and '_'", spot.path
    if kind == "invalid_key":
        return not_text(error.get("input")), spot.path[:-1]
    if kind == "too_short":
        count = ctx.get("min_length", 1)
        return f"needs at least {count} item{'' if count == 1 else 's'}", spot.path
    if kind == "string_too_short" and ctx.get("min_length") == 1:
        return "must not be empty", spot.path
    if msg.startswith("Input should be "):
        return f"expected {_expectation(error, spot)}, got {_show(spot.value)}", spot.path
    for prefix in ("Value error, ", "Assertion failed, "):
        msg = msg.removeprefix(prefix)
    return msg, spot.path


def not_text(key: Any) -> str:
    # YAML reads unquoted on/off/yes/no as booleans, 1 as a number
    return f"field names must be text, got {_show(key)}"


def _field_names(spot: _Spot) -> list[str]:
    """The fields the mapping holding an unknown key may have and does not have yet."""
    models = _models(spot.holder_annotation)
    present = spot.holder if isinstance(spot.holder, dict) else {}
    names = [info.alias or name for name, info in models[0].model_fields.items()] if models else []
    return [n for n in names if n not in present]


def _expectation(error: Any, spot: _Spot) -> str:
    if error["type"] in ("model_attributes_type", "model_type", "dict_type"):
        is_task = any(issubclass(m, TaskBase) for m in _models(spot.annotation))
        return "a task (a mapping with 'type' and its fields)" if is_task else "a mapping"
    expected = str(error["msg"]).removeprefix("Input should be ").split(", unable to")[0]
    return expected.split(", got ")[0]  # "a valid integer, got a number with a fractional part"


def _show(value: Any) -> str:
    if value is _MISSING:
        return "nothing"
    if value is None or isinstance(value, bool):
        return json.dumps(value)
    if isinstance(value, (dict, list)):
        return "a mapping" if isinstance(value, dict) else "a list"
    text = (
        repr(value) if isinstance(value, (str, int, float)) else f"{type(value).__name__} {value}"
    )
    return text if len(text) <= 60 else text[:57] + "..."


def _union_findings(
    site: tuple[Any, ...], branches: dict[str, list[tuple[Any, _Spot]]]
) -> list[Finding]:
    """The errors of the branch the value was meant for, or one "expected X or Y" finding."""
    for errors in branches.values():
        if not all(_is_mismatch(error, spot, site) for error, spot in errors):
            return [_finding(error, spot) for error, spot in errors]
    expected: list[str] = []
    for errors in branches.values():
        for error, spot in errors:
            text = _expectation(error, spot)
            if text not in expected:
                expected.append(text)
    value = next(iter(branches.values()))[0][1].value
    return [Finding(f"expected {' or '.join(expected)}, got {_show(value)}", site)]


def _is_mismatch(error: Any, spot: _Spot, site: tuple[Any, ...]) -> bool:
    """The value is not even of this branch's type (as opposed to failing inside it)."""
    return spot.path == site and str(error["type"]).endswith(("_type", "_parsing"))
