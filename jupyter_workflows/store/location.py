"""Where a project keeps its execution store: ``storagePath`` in ``workflows/config.json``."""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import ConfigError

CONFIG_FILE = Path("workflows") / "config.json"
DEFAULT_STORAGE = Path("workflows") / ".executions"


def default_store_path(project_root: Path) -> Path:
    """The store directory of the project at ``project_root``.

    ``storagePath`` is taken relative to the project root (an absolute path is used as is);
    without a config file or that key it is ``workflows/.executions``.
    """
    root = Path(project_root)
    config_path = root / CONFIG_FILE
    try:
        text = config_path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return root / DEFAULT_STORAGE
    except OSError as exc:
        raise ConfigError(f"{config_path}: cannot be read: {exc}") from exc
    try:
        config = json.loads(text)
    except ValueError as exc:
        raise ConfigError(f"{config_path}: not valid JSON: {exc}") from exc
    if not isinstance(config, dict):
        raise ConfigError(f"{config_path}: expected a JSON object at the top level")
    storage = config.get("storagePath")
    if storage is None:
        return root / DEFAULT_STORAGE
    if not isinstance(storage, str) or not storage.strip():
        raise ConfigError(f"{config_path}: 'storagePath' must be a non-empty string")
    return root / Path(storage).expanduser()
