"""default_store_path: storagePath from workflows/config.json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from jupyter_workflows.errors import ConfigError
from jupyter_workflows.store import default_store_path


def write_config(root: Path, text: str) -> None:
    (root / "workflows").mkdir(parents=True, exist_ok=True)
    (root / "workflows" / "config.json").write_text(text)


def test_default_without_config(tmp_path: Path) -> None:
    assert default_store_path(tmp_path) == tmp_path / "workflows" / ".executions"


def test_storage_path_is_relative_to_the_project_root(tmp_path: Path) -> None:
    write_config(tmp_path, json.dumps({"storagePath": "./var/runs", "logLevel": "info"}))
    assert default_store_path(tmp_path) == tmp_path / "var" / "runs"
    write_config(tmp_path, json.dumps({"storagePath": "/abs/runs"}))
    assert default_store_path(tmp_path) == Path("/abs/runs")
    write_config(tmp_path, json.dumps({"logLevel": "info"}))
    assert default_store_path(tmp_path) == tmp_path / "workflows" / ".executions"


@pytest.mark.parametrize("text", ["{not json", "[1, 2]", '{"storagePath": 3}'])
def test_bad_config_names_the_file(tmp_path: Path, text: str) -> None:
    write_config(tmp_path, text)
    with pytest.raises(ConfigError, match="config.json"):
        default_store_path(tmp_path)
