"""The installed package brings both extensions, enabled, with no step after `pip install`.

``jupyter labextension list`` and ``jupyter server extension list`` are asked, as a user
would; both write their report to stderr (with colour codes, stripped here).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ANSI = re.compile(r"\x1b\[[0-9;]*m")
PACKAGE_JSON = Path(__file__).parents[2] / "labextension" / "package.json"


def jupyter(tmp_path: Path, *args: str) -> str:
    """Run ``jupyter ARGS`` with the venv's Jupyter and no user config; stdout + stderr."""
    env = {
        **os.environ,
        # An empty user config dir: only what the installed package set up counts.
        "JUPYTER_CONFIG_DIR": str(tmp_path / "config"),
    }
    result = subprocess.run(
        [sys.executable, "-m", "jupyter", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    return ANSI.sub("", result.stdout + result.stderr)


def test_labextension_is_installed_enabled_and_ok(tmp_path: Path) -> None:
    version = json.loads(PACKAGE_JSON.read_text())["version"]
    report = jupyter(tmp_path, "labextension", "list")
    line = next((ln for ln in report.splitlines() if "jupyter-workflows" in ln), None)
    assert line is not None, report
    assert re.search(rf"jupyter-workflows v{re.escape(version)} enabled\s+OK", line), line
    assert "(python, jupyter-workflows)" in line


def test_server_extension_is_enabled_and_ok(tmp_path: Path) -> None:
    report = jupyter(tmp_path, "server", "extension", "list")
    assert re.search(r"^\s*jupyter_workflows\.server\s+enabled\s*$", report, re.M), report
    assert re.search(r"^\s*jupyter_workflows\.server\s.*\bOK\b", report, re.M), report


def test_package_version_is_the_extension_version() -> None:
    from importlib.metadata import version

    import jupyter_workflows

    expected = json.loads(PACKAGE_JSON.read_text())["version"]
    assert version("jupyter-workflows") == expected
    assert jupyter_workflows.__version__ == expected


@pytest.mark.parametrize("name", ["package.json", "static/style.js"])
def test_built_extension_is_shipped_in_the_environment(name: str) -> None:
    data_dir = Path(sys.prefix) / "share" / "jupyter" / "labextensions" / "jupyter-workflows"
    assert (data_dir / name).is_file(), f"{data_dir / name} missing: reinstall the package"
