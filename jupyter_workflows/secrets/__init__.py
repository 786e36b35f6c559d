"""Secrets: where ``${secret.NAME}`` values come from (``sources``) and resolving the ones a
workflow needs before it runs (``resolve``). Masking them is ``execution.masking``'s job."""

from __future__ import annotations

from .resolve import Resolved, check_secrets, needed_secrets, resolve_secrets
from .sources import Found, SecretsConfig, SecretSources

__all__ = [
    "Found",
    "Resolved",
    "SecretSources",
    "SecretsConfig",
    "check_secrets",
    "needed_secrets",
    "resolve_secrets",
]
