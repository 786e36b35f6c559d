"""``${...}`` templates: parse references, resolve them against a scope, render text.

Templates appear in strings (``"deploy ${tasks.build.result.version}"``), shell commands
(``shell_quoting``) and conditions (``conditions``). Nothing here uses ``eval``: references
are parsed by hand and values always stay data.

Reference forms (names and keys are ``[A-Za-z0-9_-]+``, whitespace inside the braces is
allowed)::

    ${env.NAME}                         environment variable ("" when unset)
    ${secret.NAME}                      secret (looked up before the run: ``secrets/``)
    ${params.NAME[.path...]}            a run parameter (``-p NAME VALUE``, ``-y YAML``), typed
    ${tasks.ID.result[.path...]}        a finished task's result; digits index lists
    ${tasks.ID.outputs.KEY[.path...]}   one of its outputs
    ${tasks.ID.exit_code|status|error|duration|started_at}
    ${webhook.payload[.path...]}        the webhook trigger's context
    ${item} ${item.field} ${input}      variables (loop items, inputs, any bound name)
    ${env.BASE_URL|raw}                 a filter after '|': ``raw`` inserts the value into an
                                        http task's ``url`` as it is (``url_templates``)

A bare ``${name}`` is always a variable; ``${name.more}`` is a scope lookup when ``name`` is
``env``, ``tasks``, ``secret``, ``webhook`` or ``params``, else a variable with a path. ``$${`` is a
literal ``${``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from ..errors import ExpressionError

__all__ = [
    "FILTERS",
    "SCOPES",
    "TASK_FIELDS",
    "Reference",
    "Scope",
    "TaskView",
    "UnresolvedReference",
    "find_references",
    "parse_reference",
    "parse_template",
    "render",
    "render_value",
    "split_template",
    "to_text",
]

SCOPES = frozenset({"env", "tasks", "secret", "webhook", "params"})
# Filters a reference may carry (``${env.X|raw}``); where each is allowed is checked by
# ``validate`` (``raw``: only in an http task's url), other renderers ignore them.
FILTERS = frozenset({"raw"})
TASK_FIELDS = ("result", "exit_code", "status", "outputs", "error", "duration", "started_at")
# Fields that are plain values: a path below them can never resolve, so it is a parse error.
_LEAF_FIELDS = frozenset({"exit_code", "status", "error", "duration", "started_at"})

_MARK_RE = re.compile(r"\$?\$\{")  # "${" opens a reference, "$${" is the escape for it
_BAD_NAME_CHAR_RE = re.compile(r"[^A-Za-z0-9_-]")


# --------------------------------------------------------------------------- references


@dataclass(frozen=True)
class Reference:
    """One ``${...}`` found in a string, with where it was."""

    scope: str  # "env" | "tasks" | "secret" | "webhook" | "params" | "var"
    path: tuple[str, ...]  # env/secret: (NAME,); tasks: (ID, field, ...); var: (name, ...)
    text: str  # the original "${...}" text
    start: int  # offset of "$" in the source string
    end: int  # offset just after "}"
    filters: tuple[str, ...] = ()  # ("raw",) for ${env.X|raw}

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


def parse_reference(source: str, start: int) -> Reference:
    """Parse the ``${...}`` that begins at ``source[start]``."""
    close = source.find("}", start + 2)
    if close < 0:
        raise ExpressionError("unclosed '${': expected '}'", source, start)
    body = source[start + 2 : close]
    if not body.strip():
        raise ExpressionError("empty reference '${}'", source, start)
    name, *filters = body.split("|")
    if not name.strip():
        raise ExpressionError("missing reference before '|'", source, start)
    segments = name.strip().split(".")
    _check_names(segments, source, start + 2 + len(name) - len(name.lstrip()))
    scope, path = _classify(segments, source, start)
    position = start + 2 + len(name)
    for text in filters:
        if text.strip() not in FILTERS:
            shown = repr(text.strip()) if text.strip() else "nothing"
            raise ExpressionError(
                f"unknown filter {shown} after '|': the one filter is 'raw' "
                "(${env.BASE_URL|raw} puts a value into an http url unencoded)",
                source,
                position,
            )
        position += len(text) + 1
    named = tuple(text.strip() for text in filters)
    return Reference(scope, path, source[start : close + 1], start, close + 1, named)


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


def split_template(text: str) -> list[str | Reference]:
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
        reference = parse_reference(text, match.start())
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
    return [part for part in split_template(text) if isinstance(part, Reference)]


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
    # The run's parameters (``workflow run -p NAME VALUE``), typed as given.
    params: Mapping[str, Any] = field(default_factory=dict)

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
        if ref.scope == "params":
            if ref.path[0] not in self.params:
                given = _known("given", self.params)
                raise UnresolvedReference(
                    f"no parameter '{ref.path[0]}'{given}: pass it with -p {ref.path[0]} VALUE",
                    ref,
                )
            return _walk(self.params[ref.path[0]], ref.path[1:], ref, f"params.{ref.path[0]}")
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
        part if isinstance(part, str) else to_text(scope.resolve(part))
        for part in split_template(text)
    )


def render_value(value: Any, scope: Scope) -> Any:
    """Render strings inside dicts and lists (keys too); other values pass through.

    A string that is exactly one reference gives the typed value, so
    ``items: "${tasks.list.result}"`` renders to the list itself.
    """
    if isinstance(value, str):
        parts = split_template(value)
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
