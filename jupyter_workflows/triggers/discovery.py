"""Find the workflows of a project (``workflows/definitions/``) and the webhooks they declare.

``discover_workflows`` loads each ``.json``, ``.yaml`` and ``.yml`` file (sub-folders included,
hidden ones skipped, in sorted order so that results do not depend on the file system) and
returns the valid ones. A file that does not load is reported through ``log`` with every
located problem and left out: one broken definition never stops a daemon from serving the
others. ``build_hooks`` picks the webhook paths to serve out of them, each with the variable
that holds its secret (its own ``secret_env``, else ``webhook.secretEnv`` of the project).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from ..definition.model import Trigger, WebhookTrigger, Workflow
from ..errors import ConfigError

DEFINITIONS_DIR = Path("workflows") / "definitions"
SUFFIXES = (".json", ".yaml", ".yml")
RESERVED_PATHS = ("/health", "/hooks")  # the webhook server's own endpoints

Log = Callable[[str], None]


@dataclass(frozen=True)
class DiscoveredWorkflow:
    """A valid definition file and the workflow it holds."""

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


def definition_files(root: Path) -> list[Path]:
    """The definition files under ``<root>/workflows/definitions/``, sorted; [] without it."""
    folder = Path(root) / DEFINITIONS_DIR
    if not folder.is_dir():
        return []
    return sorted(
        path
        for path in folder.rglob("*")
        if path.suffix.lower() in SUFFIXES
        and path.is_file()
        and not any(part.startswith(".") for part in path.relative_to(folder).parts)
    )


def discover_workflows(root: Path, *, log: Log = print) -> list[DiscoveredWorkflow]:
    """Load every definition of the project; report (not raise) the broken ones through ``log``."""
    from ..definition.loader import validate_file

    found: list[DiscoveredWorkflow] = []
    for path in definition_files(root):
        report = validate_file(path)
        if report.workflow is None or not report.ok:
            errors = report.errors
            log(f"skipping {path}: {len(errors)} problem(s) in the definition")
            for problem in errors:
                log(f"  {problem}")
            continue
        found.append(DiscoveredWorkflow(path, report.workflow))
    return found


@dataclass(frozen=True)
class Hook:
    """One served path: the workflow it runs and the variable holding its secret (if any)."""

    path: str
    workflow: Workflow
    file: Path | None = None
    secret_env: str | None = None


def normalize_path(path: str) -> str:
    """``deploy/`` and ``/deploy`` are the same hook: one leading slash, no trailing one."""
    return "/" + path.strip().strip("/")


def default_secret_env(root: Path) -> str | None:
    """``webhook.secretEnv`` from ``workflows/config.json``: the secret of hooks without one."""
    from ..store.location import CONFIG_FILE, read_config

    section = read_config(root).get("webhook")
    if section is None:
        return None
    name = section.get("secretEnv") if isinstance(section, dict) else None
    if not isinstance(section, dict) or (name is not None and not isinstance(name, str)):
        raise ConfigError(
            f"{Path(root) / CONFIG_FILE}: 'webhook' must be an object like "
            '{"secretEnv": "NAME_OF_THE_VARIABLE"}'
        )
    return name or None


def build_hooks(
    discovered: Iterable[DiscoveredWorkflow],
    *,
    explicit: Hook | None = None,
    secret_env: str | None = None,
    log: Log = print,
) -> dict[str, Hook]:
    """Path -> Hook for the discovered workflows with a webhook trigger, plus ``explicit``.

    A hook without its own ``secret_env`` gets ``secret_env`` (the project's default). A path
    claimed twice keeps the first (files in sorted order) and logs the other; ``explicit`` (the
    command line's ``--workflow/--path``) wins over a discovered one and replaces the discovered
    entry of the same file. Reserved paths (/health, /hooks) are refused with a log line.
    """
    hooks: dict[str, Hook] = {}
    explicit_file = explicit.file.resolve() if explicit and explicit.file else None
    candidates: list[Hook] = []
    for entry in discovered:
        trigger = entry.workflow.trigger
        if not isinstance(trigger, WebhookTrigger):
            continue
        if explicit_file is not None and entry.file.resolve() == explicit_file:
            continue
        path = normalize_path(trigger.config.webhook)
        own_secret = trigger.config.secret_env or secret_env
        candidates.append(Hook(path, entry.workflow, entry.file, own_secret))
    if explicit is not None:
        path = normalize_path(explicit.path)
        explicit = Hook(path, explicit.workflow, explicit.file, explicit.secret_env or secret_env)
        candidates.insert(0, explicit)
    for hook in candidates:
        if hook.path in RESERVED_PATHS:
            log(f"not serving {hook.file}: {hook.path} is reserved for the server itself")
        elif hook.path in hooks:
            log(f"not serving {hook.file} at {hook.path}: {hooks[hook.path].file} has that path")
        else:
            hooks[hook.path] = hook
    return hooks
