"""Parsing of option values shared by the CLI and the notebook magics."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def parse_env_pairs(values: Iterable[str]) -> dict[str, str]:
    """``["A=1,B=2", "C=x"]`` -> ``{"A": "1", "B": "2", "C": "x"}``.

    A comma starts a new pair only when what follows looks like ``NAME=``, so values may
    contain commas (``--env LIST=a,b,c``)."""
    env: dict[str, str] = {}
    for value in values:
        for pair in re.split(r",(?=[A-Za-z_][A-Za-z0-9_]*=)", value):
            name, sep, text = pair.partition("=")
            if not sep or not _NAME.match(name):
                raise ValueError(
                    f"bad --env value '{pair}': expected NAME=VALUE pairs separated by commas, "
                    "e.g. --env DEPLOY_FRONTEND=true,REGION=eu"
                )
            env[name] = text
    return env


def parse_parameters(
    pairs: Iterable[tuple[str, str] | list[str]] = (), yaml_texts: Iterable[str] = ()
) -> dict[str, Any]:
    """A run's parameters from ``-y YAML`` (mappings, merged in order) then ``-p NAME VALUE``
    (which win), as papermill takes them: ``-p n 5`` is the int 5, ``-p f 0.5`` a float,
    ``True``/``False``/``None`` those values, anything else a string. ValueError saying which
    value is wrong and what was expected."""
    params: dict[str, Any] = {}
    for text in yaml_texts:
        params.update(_yaml_parameters(text))
    for pair in pairs:
        name, value = pair
        check_parameter_name(name, f"-p {name}")
        params[name] = parameter_value(value)
    return params


def parameter_value(text: str) -> Any:
    """papermill's typing of a ``-p`` value: bool, None, int, float, else the text itself."""
    if text in _LITERALS:
        return _LITERALS[text]
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            continue
    return text


_LITERALS: dict[str, Any] = {"True": True, "False": False, "None": None}


def _yaml_parameters(text: str) -> dict[str, Any]:
    import yaml

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ValueError(f"-y {text!r} is not valid YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ValueError(
            f"-y {text!r} is a {type(data).__name__}: expected a mapping such as "
            "-y 'n: 5' or -y '{n: 5, region: eu}'"
        )
    for name in data:
        check_parameter_name(name, f"-y {text!r}")
    return data


def check_parameter_name(name: Any, where: str) -> None:
    # A notebook receives parameters as Python variables; ${params.NAME} reads the same names.
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(
            f"{where}: parameter name {name!r} is not valid: expected a name such as n or "
            "region_2 (letters, digits, _; not starting with a digit)"
        )
