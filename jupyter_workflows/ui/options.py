"""Parsing of option values shared by the CLI and the notebook magics."""

from __future__ import annotations

import re
from collections.abc import Iterable

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
