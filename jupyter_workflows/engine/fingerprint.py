"""Hashes that say whether a task would compute the same thing again.

- ``definition_hash``: sha256 of the task's resolved definition as canonical JSON: its
  fields (defaults left out, so a field added to the format later changes no hash), minus
  those that change how or whether it runs but not what it computes (``NOT_COMPUTED``), with
  the workflow's default environment merged into its own, the values of the ``${env.NAME}``
  it refers to, and the content of the script or notebook files its fields name. A resume
  compares it with the hash the old run recorded.
- ``cache_key``: the definition hash, the content of the files ``cache.inputs`` match, the
  value of ``cache.key``, and the fingerprints of its upstream tasks.
- ``fingerprint``: what a downstream cache key sees of an ended task: its cache key when it
  has one, else its definition hash, its own upstream fingerprints and the values it ended
  with (result, outputs, exit code), so a change anywhere upstream reaches every task below.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..definition.templates import Scope, render

if TYPE_CHECKING:
    from ..definition.model import Defaults, TaskBase

# Fields that change how or whether a task runs, not what it computes.
NOT_COMPUTED = frozenset(
    {
        "id",
        "name",
        "description",
        "depends_on",  # upstream changes reach a task through its upstream's hashes
        "condition",
        "timeout",
        "retry",
        "live_output",
        "continue_on_error",
        "resources",
        "infrastructure_retries",
        "on_failure",
        "cache",
    }
)
_ENV_REFERENCE = re.compile(r"\$\{\s*env\.([A-Za-z_][A-Za-z0-9_]*)\s*\}")
_PARAM_REFERENCE = re.compile(r"\$\{\s*params\.([A-Za-z0-9_-]+)")
_CHUNK = 1 << 20


def _digest(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def file_digest(path: Path) -> str | None:
    """sha256 of a regular file's content; None for anything else (missing, a folder)."""
    try:
        if not path.is_file():
            return None
        sha = hashlib.sha256()
        with path.open("rb") as handle:
            while chunk := handle.read(_CHUNK):
                sha.update(chunk)
    except OSError:
        return None
    return sha.hexdigest()


def definition_hash(
    task: TaskBase,
    defaults: Defaults,
    env: Mapping[str, str],
    project_root: Path,
    params: Mapping[str, Any] | None = None,
) -> str:
    """The hash of what ``task`` computes (see the module docstring). Run parameters count
    where the task reads them: the ones it references, all of them for a notebook task (they
    are injected into it); a run without parameters hashes as before they existed."""
    data = task.model_dump(mode="json", exclude=set(NOT_COMPUTED), exclude_defaults=True)
    declared = {**defaults.environment, **task.environment}
    if declared:
        data["environment"] = declared
    text = json.dumps(data, sort_keys=True)
    references = sorted(set(_ENV_REFERENCE.findall(text)))
    digested: dict[str, Any] = {
        "task": data,
        "env": {name: env.get(name, "") for name in references},
        "files": _named_files(task, project_root),
    }
    read = params if task.type == "notebook" else {}
    read = {**(read or {}), **{n: (params or {}).get(n) for n in _PARAM_REFERENCE.findall(text)}}
    if read:
        digested["params"] = read
    return _digest(digested)


def _named_files(task: TaskBase, project_root: Path) -> dict[str, str | None]:
    """Digest of each script or notebook the task's (literal) path fields name."""
    from ..errors import WorkflowError
    from ..plugins import TASK_TYPES

    try:  # the declared type (its path_keys), not whatever implementation is registered
        task_type = TASK_TYPES.load(task.type)
    except (WorkflowError, ImportError):
        return {}
    raw = task.model_dump(mode="json", by_alias=True)
    files: dict[str, str | None] = {}
    for key, value in task_type.path_fields(raw):
        # Where a task writes (output) and runs (cwd) is not what it reads.
        if key == "cwd" or key.split(".")[0] == "output" or not isinstance(value, str):
            continue
        if "${" in value:
            continue  # templated: known only when the task runs
        path = Path(value) if Path(value).is_absolute() else project_root / value
        files[key] = file_digest(path)
    return files


def input_digests(patterns: list[str], project_root: Path) -> list[tuple[str, str]]:
    """(path relative to the project root, content digest) of every file the globs match."""
    found: dict[str, str] = {}
    for pattern in patterns:
        for path in project_root.glob(pattern.strip()):
            digest = file_digest(path)
            if digest is not None:
                found[path.relative_to(project_root).as_posix()] = digest
    return sorted(found.items())


def cache_key(
    task: TaskBase,
    definition: str,
    scope: Scope,
    upstream: Mapping[str, str],
    project_root: Path,
) -> str:
    """The key a cached task's result is recorded under. Raises WorkflowError when its
    ``cache.key`` cannot be rendered (a bad reference): the task fails, visibly."""
    config = task.cache_config
    assert config is not None, "cache_key of a task without cache"
    return _digest(
        {
            "definition": definition,
            "inputs": input_digests(config.inputs, project_root),
            "key": None if config.key is None else render(config.key, scope),
            "upstream": {dep: upstream.get(dep) for dep in task.depends_on},
        }
    )


def fingerprint(
    definition: str | None,
    upstream: Mapping[str, str | None],
    values: Mapping[str, Any],
    key: str | None = None,
) -> str:
    """What downstream cache keys see of an ended task (see the module docstring)."""
    if key is not None:
        return key
    return _digest({"definition": definition, "upstream": dict(upstream), "values": values})
