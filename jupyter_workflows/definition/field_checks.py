"""The validators of the format's models, in plain Python (no pydantic).

The models in ``model.py`` (and the task types' models) call these functions, and
``acceptance.py`` calls the very same ones when it decides, without importing pydantic, that
a file is valid. A validator either takes the value (``before``: what the user wrote;
``after``: the validated value, where a model is an instance for pydantic and a mapping of
its fields for the acceptance check) or, for a whole model, its fields and the names the
user gave (``rule(fields, given)``). They raise ValueError with the message the user sees.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

from ..plugins import ALERT_CHANNELS
from .durations import UNIT_MILLISECONDS, UNIT_SECONDS, parse_duration


def seconds(value: Any) -> float:
    """A duration whose bare numbers are seconds."""
    return parse_duration(value, unit=UNIT_SECONDS)


def milliseconds(value: Any) -> float:
    """A duration whose bare numbers are milliseconds."""
    return parse_duration(value, unit=UNIT_MILLISECONDS)


def _env_text(value: Any) -> Any:
    if value is None:  # YAML's `KEY:` with nothing after it
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    return value  # anything else (a list, a mapping) is left for validation to reject


def environment_text(value: Any) -> Any:
    """Environment values are strings to a process; accept YAML numbers, booleans and nulls."""
    if isinstance(value, dict):
        return {k: _env_text(v) for k, v in value.items()}
    return value


def one_or_many(value: Any) -> Any:
    """``depends_on: a`` is ``depends_on: [a]``."""
    return [value] if isinstance(value, str) else value


_BACKOFF_NAMES = {"fixed": 1.0, "none": 1.0, "constant": 1.0, "exponential": 2.0}


def named_backoff(value: Any) -> Any:
    """A retry backoff may be named: fixed (none, constant) or exponential."""
    if isinstance(value, str) and value.lower() in _BACKOFF_NAMES:
        return _BACKOFF_NAMES[value.lower()]
    return value


def boolean_jitter(value: Any) -> Any:
    """``jitter: true`` is 20%, ``false`` none."""
    if value is True:
        return 0.2
    if value is False:
        return 0.0
    return value


def version_text(value: Any) -> Any:
    """YAML reads ``version: 1.0`` as a number and ``version: 2024-01-01`` as a date."""
    if isinstance(value, (int, float, date)) and not isinstance(value, bool):
        return str(value)
    return value


def _project_globs(patterns: list[str], what: str, example: str) -> list[str]:
    """``patterns`` when each is a glob inside the project; else ValueError saying so."""
    for pattern in patterns:
        parts = pattern.strip().replace("\\", "/").split("/")
        if not pattern.strip() or pattern.strip().startswith("/") or ".." in parts:
            raise ValueError(
                f"{what} '{pattern}' must be a glob relative to the project root "
                f"(no leading '/', no '..'), e.g. '{example}'"
            )
    return patterns


def cache_inputs(patterns: list[str]) -> list[str]:
    return _project_globs(patterns, "input pattern", "data/*.csv")


def watched_files(patterns: list[str]) -> list[str]:
    return _project_globs(patterns, "pattern", "src/**/*.ts")


def known_channel(name: str) -> str:
    """An alert channel built in or installed."""
    if name.strip().lower() not in ALERT_CHANNELS:
        from ..errors import UnknownPlugin

        raise ValueError(str(UnknownPlugin(ALERT_CHANNELS.kind, name, ALERT_CHANNELS.names())))
    return name


def js_condition(text: str) -> str:
    """An alert rule's JavaScript-style condition that parses."""
    from .js_conditions import parse_js_condition

    return _parses(text, parse_js_condition, "condition")


def js_template(text: str) -> str:
    """An alert rule's message template that parses."""
    from .js_conditions import check_template

    return _parses(text, check_template, "template")


def _parses(text: str, parse: Any, what: str) -> str:
    from ..errors import ExpressionError

    try:
        parse(text)
    except ExpressionError as exc:
        raise ValueError(f"invalid {what}: {exc.reason} at position {exc.position}") from None
    return text


def _field(model: Any, name: str) -> Any:
    return model[name] if isinstance(model, Mapping) else getattr(model, name)


def _set_field(model: Any, name: str, value: Any) -> None:
    """Set a field of a model, or of the acceptance check's fields of one, counted as set by
    each (the model's setattr adds it to ``model_fields_set``, the check's to ``given``)."""
    if isinstance(model, Mapping):
        model[name] = value  # type: ignore[index]
        given: set[str] = getattr(model, "given", set())
        given.add(name)
    else:
        setattr(model, name, value)


def unique_alert_names(rules: list[Any] | None) -> list[Any] | None:
    """Alert rules of one workflow have different names."""
    names = [_field(rule, "name") for rule in rules or ()]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError(f"alert name '{repeated[0]}' is used twice; names must differ")
    return rules


def environment_into_defaults(value: dict[str, str], info: Any) -> dict[str, str]:
    """The original format's workflow-level ``environment`` joins ``defaults.environment``;
    the same name set differently in both is an error."""
    defaults = info.data.get("defaults")  # absent when it failed validation
    if value and defaults is not None:
        environment = _field(defaults, "environment")
        clash = [k for k in value if environment.get(k, value[k]) != value[k]]
        if clash:
            raise ValueError(
                f"'{clash[0]}' is set both here and in defaults.environment, differently; keep one"
            )
        _set_field(defaults, "environment", {**value, **environment})
    return value


# Rules of whole models: ``fields`` is the model's field values by name (its ``__dict__``),
# ``given`` the names the user wrote. They may normalise a field in place.


def cron_type(fields: dict[str, Any], given: set[str]) -> None:
    """``schedule`` is the original format's name for a ``cron`` trigger."""
    fields["type"] = "cron"


def tolerance_needs_a_timestamp(fields: dict[str, Any], given: set[str]) -> None:
    if fields["signature"] == "github" and "tolerance" in given:
        raise ValueError(
            "'tolerance' applies to timestamped signatures (signature: stripe or slack); "
            "github signatures carry no time"
        )


def _given(model: Any) -> set[str]:
    # the acceptance check's fields mapping carries them as ``given``
    given: set[str] = getattr(model, "given" if isinstance(model, Mapping) else "model_fields_set")
    return given


# The task types' validators.


def upper_method(value: Any) -> Any:
    """HTTP methods in any case."""
    return value.upper() if isinstance(value, str) else value


def complete_auth(fields: dict[str, Any], given: set[str]) -> None:
    if fields["type"] == "basic" and (fields["username"] is None or fields["password"] is None):
        raise ValueError("basic auth needs 'username' and 'password'")
    if fields["type"] == "bearer" and not fields["token"]:
        raise ValueError("bearer auth needs 'token'")


def one_body(fields: dict[str, Any], given: set[str]) -> None:
    """The original's ``data`` is ``body``; only one of data, body and json."""
    if fields["data"] is not None:
        other = (
            "body"
            if fields["body"] is not None
            else "json"
            if fields["json_body"] is not None
            else None
        )
        if other:
            raise ValueError(f"set either 'data' (the original's 'body') or '{other}'")
        fields["body"], fields["data"] = fields["data"], None


def script_or_code(fields: dict[str, Any], given: set[str]) -> None:
    if (fields["script"] is None) == (fields["code"] is None):
        raise ValueError("a python task needs exactly one of 'script' (a file) or 'code'")


def shell_by_default(value: Any) -> Any:
    """A child task written without ``type`` but with a ``command`` is a shell task, as in
    the original format."""
    if isinstance(value, dict) and "type" not in value and "command" in value:
        return {"type": "shell", **value}
    return value


def children_shell_by_default(value: Any) -> Any:
    return [shell_by_default(v) for v in value] if isinstance(value, list) else value


def loop_body(fields: dict[str, Any], given: set[str]) -> None:
    """A loop repeats ``then`` (the original's ``task``); ``parallel: true`` runs every
    iteration at once unless ``max_parallel`` says otherwise."""
    then, task = fields["then"], fields["task"]
    if then is not None and task is not None:
        raise ValueError("set either 'then' or 'task' (its original spelling), not both")
    if then is None and task is None:
        raise ValueError("missing the task to repeat: 'then' (or 'task')")
    fields["then"], fields["task"] = then if then is not None else task, None
    if fields["parallel"] and "max_parallel" not in given:
        # every iteration at once; the run's max_parallel still bounds what they start
        items = fields["items"]
        fields["max_parallel"] = max(len(items), 1) if isinstance(items, list) else 1024


def database_operation(fields: dict[str, Any], given: set[str]) -> None:
    """The operation, when not given, follows from the fields; each needs its own."""
    if fields["operation"] is None:
        if fields["migrations_path"] is not None:
            fields["operation"] = "migration"
        elif fields["queries"]:
            fields["operation"] = "transaction"
        elif fields["query"] is not None:
            fields["operation"] = "query"
        else:
            raise ValueError(
                "a database task needs 'query', 'queries' (a transaction) or "
                "'migrations_path' (a migration)"
            )
    operation = fields["operation"]
    needs = {"query": "query", "migration": "migrations_path", "transaction": "queries"}
    if not fields[needs[operation]]:
        raise ValueError(f"operation '{operation}' needs '{needs[operation]}'")


def docker_build_or_run(fields: dict[str, Any], given: set[str]) -> None:
    """The original's ``config`` wrapping moves its fields up; a docker task builds or runs."""
    config = fields["config"]
    if config is not None:
        for name in _given(config):
            if name in given:
                raise ValueError(f"'{name}' is set both here and in 'config'; keep one")
            fields[name] = _field(config, name)
        fields["config"] = None
    if not (fields["dockerfile"] or fields["context"] or fields["image"]):
        raise ValueError("a docker task needs 'dockerfile'/'context' to build or 'image' to run")
