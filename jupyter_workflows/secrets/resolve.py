"""Which secrets a workflow needs, and resolving them all before any task starts.

A workflow needs every name its ``${secret.NAME}`` references mention, wherever they are,
plus the names it lists under ``secrets:``. ``resolve_secrets`` looks each up
(``sources.SecretSources``) and raises one ``SecretError`` naming every missing one, the
places that need it and where it was looked for; a run calls it before its journal opens.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..definition.behaviour import WorkflowBehaviour
from ..definition.templates import find_references
from ..errors import ExpressionError, SecretError
from ..execution.masking import Masker
from .sources import ENV_PREFIX, Found, SecretSources

if TYPE_CHECKING:
    from ..definition.model import Workflow

__all__ = ["Resolved", "check_secrets", "needed_secrets", "resolve_secrets"]


def needed_secrets(workflow: Workflow | Mapping[str, Any]) -> dict[str, list[str]]:
    """Each secret name the workflow needs -> where it is needed, in file order
    (``task 'call', field 'headers.Authorization'``, or ``secrets`` for a listed name)."""
    data = (
        workflow.model_dump(mode="json", by_alias=True, exclude_defaults=True)
        if isinstance(workflow, WorkflowBehaviour)
        else dict(workflow)
    )
    needed: dict[str, list[str]] = {}
    for where, text in _strings(data, None, ()):
        try:
            references = find_references(text)
        except ExpressionError:
            continue  # validation reports it; a run never gets this far with it
        for ref in references:
            if ref.scope == "secret":
                places = needed.setdefault(ref.path[0], [])
                if where not in places:
                    places.append(where)
    listed = data.get("secrets")
    for name in listed if isinstance(listed, list) else ():
        if isinstance(name, str):
            needed.setdefault(name, []).append("secrets")
    return needed


def _strings(value: Any, task_id: str | None, path: tuple[str, ...]) -> Iterator[tuple[str, str]]:
    """(place, text) of every string holding ``${`` below ``value``; a mapping with both an
    ``id`` and a ``type`` is a task, and places below it are its fields."""
    if isinstance(value, str):
        if "${" in value:
            if task_id is not None:
                yield f"task '{task_id}', field '{'.'.join(path)}'", value
            else:
                yield f"field '{'.'.join(path)}'", value
    elif isinstance(value, dict):
        if isinstance(value.get("id"), str) and "type" in value:
            task_id, path = value["id"], ()
        for key, item in value.items():
            yield from _strings(item, task_id, (*path, str(key)))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings(item, task_id, (*path, str(index)))


@dataclass
class Resolved:
    """The secrets of one run: values by name, where each came from, the values to mask."""

    values: dict[str, str] = field(default_factory=dict)
    found: dict[str, Found] = field(default_factory=dict)
    # Values of environment variables the workflow declares secret (masked too, even when
    # the secret of that name resolved from elsewhere).
    declared_env: dict[str, str] = field(default_factory=dict)

    def masker(self) -> tuple[Masker | None, list[str]]:
        """``Masker.build`` over every value: the masker and the names too short to mask."""
        named = {**{f"${k}": v for k, v in self.declared_env.items()}, **self.values}
        masker, short = Masker.build(named)
        return masker, sorted({name.removeprefix("$") for name in short})


def resolve_secrets(
    workflow: Workflow,
    project_root: Path,
    env: Mapping[str, str] | None = None,
    *,
    source: str | None = None,
) -> Resolved:
    """Every secret ``workflow`` needs, resolved; SecretError naming each missing one (and
    ``source``, the workflow's file, when given) before anything has run."""
    needed = needed_secrets(workflow)
    if not needed:
        return Resolved()
    sources = SecretSources(project_root, env=env, declared=workflow.secrets)
    resolved, missing = Resolved(), {}
    for name in needed:
        found = sources.lookup(name)
        if found is None:
            missing[name] = needed[name]
        else:
            resolved.values[name] = found.value
            resolved.found[name] = found
    if missing:
        raise SecretError(_missing_message(missing, sources, source), missing)
    environ = sources.env
    resolved.declared_env = {n: environ[n] for n in workflow.secrets if environ.get(n)}
    return resolved


def check_secrets(
    workflow: Workflow, project_root: Path, env: Mapping[str, str] | None = None
) -> tuple[dict[str, Found | None], dict[str, list[str]], SecretSources]:
    """For ``workflow secrets check``: each needed name -> where it resolves (None: missing),
    the places needing each, and the sources (``looked_in`` says where a missing one was
    looked for). SecretError only when a source cannot be used (the secrets file)."""
    needed = needed_secrets(workflow)
    sources = SecretSources(project_root, env=env, declared=workflow.secrets)
    return {name: sources.lookup(name) for name in needed}, needed, sources


def _missing_message(
    missing: dict[str, list[str]], sources: SecretSources, source: str | None
) -> str:
    head = f"{source}: " if source else ""
    lines = [f"{head}{len(missing)} secret(s) this workflow needs cannot be found:"]
    for name, places in missing.items():
        lines.append(f"  {name}: needed by {'; '.join(places)}")
        lines.append(f"    looked in: {', '.join(sources.looked_in(name))}")
    first = next(iter(missing))
    lines.append(
        f"Set {ENV_PREFIX}{first}, or add {first}=... to {sources.file_shown} (chmod 600); "
        "`workflow secrets check FILE` lists what a workflow needs and where each is found."
    )
    return "\n".join(lines)
