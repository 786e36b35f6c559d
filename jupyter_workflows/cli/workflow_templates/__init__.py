"""Starting points for new workflows (``workflow create --template``, ``workflow generate --type``).

``TEMPLATES`` are the four the original tool offered to ``create``: web-app, ci-cd, scheduled,
custom. ``GENERATE_TYPES`` adds one per trigger the others do not show: file-watch and
webhook. ``build(kind, name)`` gives a definition's data; ``render(data, path)`` its text as
JSON, or YAML for a ``.yaml``/``.yml`` path.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import catalog

__all__ = ["GENERATE_TYPES", "NAME_PATTERN", "TEMPLATES", "build", "check_name", "render"]

TEMPLATES: dict[str, Callable[[str], dict[str, Any]]] = {
    "web-app": catalog.web_app,
    "ci-cd": catalog.ci_cd,
    "scheduled": catalog.scheduled,
    "custom": catalog.custom,
}
GENERATE_TYPES: dict[str, Callable[[str], dict[str, Any]]] = {
    **TEMPLATES,
    "file-watch": catalog.file_watch,
    "webhook": catalog.webhook,
}

# A name becomes a file name, a webhook path and a unit name: keep it to safe characters.
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")


def check_name(name: str) -> str | None:
    """Why ``name`` cannot name a workflow file, or None when it can."""
    if NAME_PATTERN.fullmatch(name) and not name.endswith("."):
        return None
    return (
        f"invalid workflow name '{name}': use letters, digits, '-', '_' and '.', starting with "
        "a letter or digit (at most 100 characters), e.g. 'nightly-etl'"
    )


def build(kind: str, name: str, *, types: dict[str, Any] | None = None) -> dict[str, Any]:
    """The data of a new workflow of ``kind`` named ``name``; KeyError for an unknown kind."""
    return (types or GENERATE_TYPES)[kind](name)


def render(data: dict[str, Any], path: Path) -> str:
    """The text of a definition file: YAML for ``.yaml``/``.yml``, else JSON (2-space indent)."""
    if path.suffix.lower() in (".yaml", ".yml"):
        import yaml

        return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"
