"""The webhooks a project's workflows declare, each with the variable holding its secret.

The workflows themselves are found by ``jupyter_workflows.project.discover_workflows`` (the one
rule every surface uses). ``build_hooks`` picks the webhook paths to serve out of them, each
with the variable that holds its secret (its own ``secret_env``, else ``webhook.secretEnv`` of
the project).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path

from ..definition.model import (
    DEFAULT_REPLAY_WINDOW,
    DEFAULT_TOLERANCE,
    WebhookTrigger,
    Workflow,
)
from ..errors import ConfigError
from ..project import DiscoveredWorkflow

RESERVED_PATHS = ("/health", "/hooks")  # the webhook server's own endpoints

Log = Callable[[str], None]


@dataclass(frozen=True)
class Hook:
    """One served path: the workflow it runs, the variable holding its secret (if any), how
    requests are signed (github, stripe, slack), the tolerance of signed timestamps and how
    long a request is remembered (seconds)."""

    path: str
    workflow: Workflow
    file: Path | None = None
    secret_env: str | None = None
    signature: str = "github"
    tolerance: float = DEFAULT_TOLERANCE
    replay_window: float = DEFAULT_REPLAY_WINDOW

    @classmethod
    def serving(cls, path: str, workflow: Workflow, file: Path | None = None) -> Hook:
        """A hook at ``path`` with the settings of the workflow's webhook trigger (the defaults
        when it has none: ``workflow serve --workflow FILE --path P`` serves any workflow)."""
        trigger = workflow.trigger
        if not isinstance(trigger, WebhookTrigger):
            return cls(path, workflow, file)
        config = trigger.config
        return cls(
            path, workflow, file, config.secret_env, config.signature, config.tolerance,
            config.replay_window,
        )  # fmt: skip


def normalize_path(path: str) -> str:
    """``deploy/`` and ``/deploy`` are the same hook: one leading slash, no trailing one."""
    return "/" + path.strip().strip("/")


def default_secret_env(root: Path) -> str | None:
    """``webhook.secretEnv`` from the project's configuration: the secret of hooks without one."""
    from ..project import config_file, read_config

    section = read_config(root).get("webhook")
    if section is None:
        return None
    name = section.get("secretEnv") if isinstance(section, dict) else None
    if not isinstance(section, dict) or (name is not None and not isinstance(name, str)):
        raise ConfigError(
            f"{config_file(Path(root))}: 'webhook' must be an object like "
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
    entry of the same file. Reserved paths (/health, /hooks) and a stripe or slack signature
    without a secret (it would accept anything) are refused with a log line.
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
        found = Hook.serving(normalize_path(trigger.config.webhook), entry.workflow, entry.file)
        candidates.append(replace(found, secret_env=found.secret_env or secret_env))
    if explicit is not None:
        path = normalize_path(explicit.path)
        explicit = replace(explicit, path=path, secret_env=explicit.secret_env or secret_env)
        candidates.insert(0, explicit)
    for hook in candidates:
        if hook.path in RESERVED_PATHS:
            log(f"not serving {hook.file}: {hook.path} is reserved for the server itself")
        elif hook.signature != "github" and hook.secret_env is None:
            log(
                f"not serving {hook.file} at {hook.path}: signature {hook.signature} needs a "
                "secret (secret_env on the trigger, or webhook.secretEnv in workflows/config.json)"
            )
        elif hook.path in hooks:
            log(f"not serving {hook.file} at {hook.path}: {hooks[hook.path].file} has that path")
        else:
            hooks[hook.path] = hook
    return hooks
