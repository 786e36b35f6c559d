"""Credentials of the alert channels and webhook triggers, from the same sources as secrets.

An alert channel reads ``SLACK_WEBHOOK_URL``, ``EMAIL_SMTP_PASSWORD``... and a webhook
trigger its signing key (``secret_env``) from the environment. ``credentials`` fills in those
the environment leaves unset from the other sources (``WORKFLOW_SECRET_<NAME>``, the secrets
file, the command, the keyring), so they need not sit in a crontab or a unit file.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from ..errors import ConfigError, SecretError
from .sources import SecretSources

__all__ = ["credentials"]


def credentials(
    project_root: Path,
    names: Iterable[str],
    env: Mapping[str, str] | None = None,
    *,
    warn: Callable[[str], None] | None = None,
) -> dict[str, str]:
    """``env`` (default ``os.environ``) plus a value for each of ``names`` it leaves unset or
    empty, where a source has one. A source that cannot be used (a secrets file others can
    read) is reported to ``warn`` and the rest is left unset: whoever needs it says so."""
    merged = dict(os.environ if env is None else env)
    wanted = [name for name in dict.fromkeys(names) if not merged.get(name, "").strip()]
    if not wanted:
        return merged
    try:
        sources = SecretSources(project_root, env=merged)
        for name in wanted:
            found = sources.lookup(name)
            if found is not None:
                merged[name] = found.value
    except (SecretError, ConfigError) as exc:
        if warn is not None:
            warn(f"credentials from the secret sources are unavailable: {exc}")
    return merged
