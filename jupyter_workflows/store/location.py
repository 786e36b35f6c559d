"""Where a project keeps its execution store: ``storagePath`` in ``workflows/config.json``."""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import ConfigError

CONFIG_FILE = Path("workflows") / "config.json"
DEFAULT_STORAGE = Path("workflows") / ".executions"
# Visible copies of executed notebooks (Jupyter will not open the hidden store):
# <outputs>/<workflow>/<first 8 characters of the execution id>/<task>.ipynb
OUTPUTS = Path("workflows") / "outputs"


def output_copies(project_root: Path, execution_ids: list[str]) -> list[Path]:
    """The folders of visible notebook copies made for these executions."""
    wanted = {execution_id[:8] for execution_id in execution_ids}
    base = project_root / OUTPUTS
    if not wanted or not base.is_dir():
        return []
    return sorted(p for p in base.glob("*/*") if p.is_dir() and p.name in wanted)


def read_config(project_root: Path) -> dict[str, object]:
    """``workflows/config.json`` as a dict ({} when there is none); ConfigError when bad."""
    config_path = Path(project_root) / CONFIG_FILE
    try:
        text = config_path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ConfigError(f"{config_path}: cannot be read: {exc}") from exc
    try:
        config = json.loads(text)
    except ValueError as exc:
        raise ConfigError(f"{config_path}: not valid JSON: {exc}") from exc
    if not isinstance(config, dict):
        raise ConfigError(f"{config_path}: expected a JSON object at the top level")
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
        raise ConfigError(f"{root / CONFIG_FILE}: 'storagePath' must be a non-empty string")
    return root / Path(storage).expanduser()


DEFAULT_DAYS_TO_KEEP = 30


def days_to_keep(project_root: Path) -> int:
    """``cleanup.daysToKeep`` from the config, else 30."""
    cleanup = read_config(project_root).get("cleanup") or {}
    days = cleanup.get("daysToKeep", DEFAULT_DAYS_TO_KEEP) if isinstance(cleanup, dict) else None
    if not isinstance(days, int) or isinstance(days, bool) or days < 0:
        where = Path(project_root) / CONFIG_FILE
        raise ConfigError(f"{where}: 'cleanup.daysToKeep' must be a whole number of days >= 0")
    return days
