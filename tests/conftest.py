"""Shared fixtures: a project directory and helpers to run workflows in it for real."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from jupyter_workflows.definition.model import Workflow
from jupyter_workflows.engine import WorkflowOrchestrator


@pytest.fixture(autouse=True)
def _no_inherited_project_root(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests find their project themselves, even when the suite runs as a workflow's task
    (whose environment names the project running it)."""
    monkeypatch.delenv("WORKFLOW_PROJECT_ROOT", raising=False)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """An empty project root with its own store."""
    root = tmp_path / "project"
    root.mkdir()
    return root


def make_workflow(*tasks: dict[str, Any], name: str = "test", **fields: Any) -> Workflow:
    return Workflow.model_validate({"name": name, "tasks": list(tasks), **fields})


def write_workflow(root: Path, data: dict[str, Any], name: str = "wf.json") -> Path:
    path = root / name
    path.write_text(json.dumps(data, indent=2))
    return path


@pytest.fixture
def run_workflow(project: Path):
    """Run a workflow (model, dict or path) in ``project`` and return its Execution, however
    the run ended (``raise_on_failure=False``: these tests look at failures)."""

    def run(workflow: Any, **options: Any):
        orchestrator = WorkflowOrchestrator(project, kill_grace=options.pop("kill_grace", 2.0))
        options.setdefault("raise_on_failure", False)
        return orchestrator.execute(workflow, **options)

    return run


def cli(root: Path, *args: str, timeout: float = 120, env: dict[str, str] | None = None,
        input: str | None = None) -> subprocess.CompletedProcess[str]:  # fmt: skip
    """The real `workflow` command, as a user runs it, in ``root``."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "jupyter_workflows", *args],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=full_env,
        input=input,
    )


def install_plugin(site: Path, package: str, source: str, entry_points: str) -> Path:
    """A plugin as pip installs it, in ``site`` (a folder to put on PYTHONPATH): the package
    ``package`` with ``source`` as its ``__init__.py``, and a ``*.dist-info`` folder whose
    ``entry_points.txt`` is ``entry_points``. Returns the module's file."""
    module = site / package / "__init__.py"
    module.parent.mkdir(parents=True)
    module.write_text(source)
    dist = site / f"{package}-1.0.dist-info"
    dist.mkdir()
    name = package.replace("_", "-")
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(entry_points)
    return module
