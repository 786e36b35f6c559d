"""The layout of a project: its root, its configuration, where history and outputs go, and
which files are its workflows.

The root is found as git finds a repository: from the working directory (in a kernel, the
notebook's folder) up to the nearest folder holding ``workflows/config.json``,
``.workflow-config.json`` or ``workflows/definitions/``; ``--project-root`` or
``$WORKFLOW_PROJECT_ROOT`` name it instead, and with no such folder it is the working
directory. Relative paths inside workflows resolve against the root; file arguments given on a
command line or to the API resolve against the working directory, as with any tool.

The configuration is ``workflows/config.json``, else ``.workflow-config.json`` at the root (the
original Node system's name). When both exist, ``workflows/config.json`` is used and the other
is ignored whole: one file, never a blend of two. Its ``allowedPaths`` lists the folders
outside the root that tasks may read, write, run or work in (``tasks.paths`` holds the policy).

Workflows are every ``.json``/``.yaml``/``.yml`` file under ``workflows/definitions/`` plus
``*.workflow.json|yaml|yml`` anywhere under the root. The walk skips hidden folders, virtual
environments, ``node_modules`` and the execution store, and stops after ``MAX_DIRS`` folders so
that a root in a large home directory still answers.

This module sits below the store, the engine and every surface: it imports only
``jupyter_workflows.errors`` and ``jupyter_workflows.definition``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import ConfigError, DefinitionError

if TYPE_CHECKING:  # pydantic loads only where workflows are loaded, not to find a root
    from .definition.model import Trigger, Workflow

ROOT_ENV = "WORKFLOW_PROJECT_ROOT"
CONFIG_FILE = Path("workflows") / "config.json"
LEGACY_CONFIG_FILE = Path(".workflow-config.json")
DEFINITIONS_DIR = Path("workflows") / "definitions"
DEFAULT_STORAGE = Path("workflows") / ".executions"
# Visible copies of executed notebooks (Jupyter will not open the hidden store):
# <outputs>/<workflow>/<first 8 characters of the execution id>/<task>.ipynb
OUTPUTS = Path("workflows") / "outputs"
DEFAULT_DAYS_TO_KEEP = 30

SUFFIXES = (".json", ".yaml", ".yml")
WORKFLOW_SUFFIXES = tuple(".workflow" + suffix for suffix in SUFFIXES)
SKIP_DIRS = frozenset({"node_modules", ".venv", "venv", "__pycache__", "site-packages"})
MAX_DIRS = 20_000

Log = Callable[[str], None]

# -- the root --------------------------------------------------------------------------------


def is_project(folder: Path) -> bool:
    """Whether ``folder`` holds a configuration file or a ``workflows/definitions/`` folder."""
    try:
        return (
            (folder / CONFIG_FILE).is_file()
            or (folder / LEGACY_CONFIG_FILE).is_file()
            or (folder / DEFINITIONS_DIR).is_dir()
        )
    except OSError:  # a folder we may not look into is not ours
        return False


def find_root(start: str | Path | None = None) -> Path:
    """The nearest folder at or above ``start`` (default: the working directory) that is a
    project, resolved; ``start`` itself when there is none."""
    here = Path(os.path.expanduser(start) if start is not None else os.getcwd()).resolve()
    for folder in (here, *here.parents):
        if is_project(folder):
            return folder
    return here


def project_root(explicit: str | Path | None = None, *, start: str | Path | None = None) -> Path:
    """The project root: ``explicit`` (an option), else ``$WORKFLOW_PROJECT_ROOT``, else
    ``find_root(start)``. Resolved; ConfigError when a named root is not a directory."""
    named = explicit if explicit not in (None, "") else os.environ.get(ROOT_ENV) or None
    if named is None:
        return find_root(start)
    root = Path(os.path.expanduser(named)).resolve()
    if not root.is_dir():
        raise ConfigError(f"project root {root} is not a directory")
    return root


def file_argument(path: str | Path, root: Path | None = None) -> Path:
    """A file named on a command line or to the API: absolute, relative to the working
    directory. DefinitionError when it does not exist (pointing at ``root / path`` when
    that one does, the place such paths meant before)."""
    given = Path(os.path.expanduser(path))
    absolute = Path(os.path.abspath(given))  # no "..": the path is recorded with the run
    if absolute.is_file():
        return absolute
    hint = ""
    if root is not None and not given.is_absolute() and (root / given).is_file():
        hint = f" (relative paths are taken from the working directory; {root / given}?)"
    if absolute.exists():
        raise DefinitionError(f"{path}: is a directory, not a workflow file")
    raise DefinitionError(f"{path}: no such workflow file{hint}")


# -- configuration ---------------------------------------------------------------------------


def config_file(root: Path) -> Path:
    """The configuration file of the project at ``root``: ``workflows/config.json`` when it
    exists, else ``.workflow-config.json`` when that does, else ``workflows/config.json``."""
    primary = Path(root) / CONFIG_FILE
    legacy = Path(root) / LEGACY_CONFIG_FILE
    return legacy if not primary.exists() and legacy.exists() else primary


def read_config(root: Path) -> dict[str, object]:
    """The configuration as a dict ({} when there is none); ConfigError naming the file."""
    path = config_file(root)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read: {exc}") from exc
    try:
        config = json.loads(text)
    except ValueError as exc:
        raise ConfigError(f"{path}: not valid JSON: {exc}") from exc
    if not isinstance(config, dict):
        raise ConfigError(f"{path}: expected a JSON object at the top level")
    return config


def default_store_path(project_root: Path) -> Path:
    """The store directory of the project at ``project_root``.

    ``storagePath`` is taken relative to the project root (an absolute path is used as is);
    without a config file or that key it is ``workflows/.executions``.
    """
    root = Path(project_root)
    storage = read_config(root).get("storagePath")
    if storage is None:
        return root / DEFAULT_STORAGE
    if not isinstance(storage, str) or not storage.strip():
        raise ConfigError(f"{config_file(root)}: 'storagePath' must be a non-empty string")
    return root / Path(storage).expanduser()


def allowed_paths(project_root: Path) -> tuple[Path, ...]:
    """Folders outside the root that tasks may use: ``allowedPaths`` from the config, each
    absolute or relative to the root, ``~`` expanded, resolved (symlinks followed)."""
    root = Path(project_root)
    entries = read_config(root).get("allowedPaths", [])
    if not isinstance(entries, list) or not all(
        isinstance(entry, str) and entry.strip() for entry in entries
    ):
        raise ConfigError(
            f"{config_file(root)}: 'allowedPaths' must be a list of folder paths (absolute, "
            'or relative to the project root), such as ["../shared-data", "/srv/exports"]'
        )
    return tuple((root / Path(entry).expanduser()).resolve() for entry in entries)


def executor_settings(project_root: Path) -> tuple[str | None, str | None]:
    """``executor`` and ``cluster`` from the config: where runs of this project run their
    attempts by default (``"dask"`` and a scheduler address, or nothing: this machine)."""
    config = read_config(Path(project_root))
    executor, cluster = config.get("executor"), config.get("cluster")
    for key, value in (("executor", executor), ("cluster", cluster)):
        if value is not None and (not isinstance(value, str) or not value.strip()):
            raise ConfigError(
                f"{config_file(Path(project_root))}: '{key}' must be a non-empty string "
                '(e.g. "executor": "dask", "cluster": "tcp://scheduler:8786")'
            )
    return executor, cluster  # type: ignore[return-value]


def local_resources(project_root: Path) -> dict[str, float]:
    """``resources`` from the config: how much of each resource this machine has, for tasks
    that declare ``resources`` and run here (e.g. ``{"GPU": 2}``)."""
    declared = read_config(Path(project_root)).get("resources", {})
    if not isinstance(declared, dict) or not all(
        isinstance(name, str)
        and isinstance(amount, (int, float))
        and not isinstance(amount, bool)
        and amount > 0
        for name, amount in declared.items()
    ):
        raise ConfigError(
            f"{config_file(Path(project_root))}: 'resources' must map resource names to "
            'positive amounts, such as {"GPU": 2, "MEMORY": 16e9}'
        )
    return {name: float(amount) for name, amount in declared.items()}


def days_to_keep(project_root: Path) -> int:
    """``cleanup.daysToKeep`` from the config, else 30."""
    cleanup = read_config(project_root).get("cleanup") or {}
    days = cleanup.get("daysToKeep", DEFAULT_DAYS_TO_KEEP) if isinstance(cleanup, dict) else None
    if not isinstance(days, int) or isinstance(days, bool) or days < 0:
        where = config_file(project_root)
        raise ConfigError(f"{where}: 'cleanup.daysToKeep' must be a whole number of days >= 0")
    return days


def outputs_dir(project_root: Path) -> Path:
    """Where visible copies of executed notebooks go: ``workflows/outputs/``."""
    return Path(project_root) / OUTPUTS


def output_copies(project_root: Path, execution_ids: list[str]) -> list[Path]:
    """The folders of visible notebook copies made for these executions."""
    wanted = {execution_id[:8] for execution_id in execution_ids}
    base = outputs_dir(project_root)
    if not wanted or not base.is_dir():
        return []
    return sorted(p for p in base.glob("*/*") if p.is_dir() and p.name in wanted)


# -- workflows -------------------------------------------------------------------------------


def workflow_files(root: Path, *, skip: Path | None = None) -> list[Path]:
    """The workflow files of the project at ``root`` (resolved), sorted absolute paths.

    ``skip`` is a folder never entered; by default the project's store. A file that is a
    symlink to somewhere outside the root is left out.
    """
    root = Path(root).resolve()
    skip = Path(os.path.abspath(skip if skip is not None else default_store_path(root)))
    found: list[Path] = []
    for walked, (current, dirs, files) in enumerate(os.walk(root), start=1):
        here = Path(current)
        dirs[:] = sorted(
            d for d in dirs if not d.startswith(".") and d not in SKIP_DIRS and here / d != skip
        )
        in_definitions = here.relative_to(root).parts[:2] == DEFINITIONS_DIR.parts
        for name in files:
            lower = name.lower()
            wanted = lower.endswith(WORKFLOW_SUFFIXES) or (
                in_definitions and lower.endswith(SUFFIXES)
            )
            if wanted and not name.startswith(".") and _inside(here / name, root):
                found.append(here / name)
        if walked >= MAX_DIRS:
            break
    return sorted(found)


def _inside(path: Path, root: Path) -> bool:
    try:
        return path.resolve().is_relative_to(root)
    except (OSError, RuntimeError):  # a symlink loop
        return False


@dataclass(frozen=True)
class DiscoveredWorkflow:
    """A valid workflow file and the workflow it holds."""

    file: Path
    workflow: Workflow

    @property
    def trigger(self) -> Trigger | None:
        """The workflow's trigger model (None for a workflow without one)."""
        return self.workflow.trigger

    @property
    def trigger_type(self) -> str | None:
        """``"cron"``, ``"webhook"``, ``"file_change"``, ``"manual"`` or None."""
        trigger = self.workflow.trigger
        return None if trigger is None else trigger.type


def discover_workflows(root: Path, *, log: Log = print) -> list[DiscoveredWorkflow]:
    """Load every workflow file of the project; report (not raise) the broken ones through
    ``log`` with each located problem, so one broken file never hides the others."""
    from .definition.loader import validate_file

    found: list[DiscoveredWorkflow] = []
    for path in workflow_files(root):
        report = validate_file(path)
        if report.workflow is None or not report.ok:
            errors = report.errors
            log(f"skipping {path}: {len(errors)} problem(s) in the definition")
            for problem in errors:
                log(f"  {problem}")
            continue
        found.append(DiscoveredWorkflow(path, report.workflow))
    return found
