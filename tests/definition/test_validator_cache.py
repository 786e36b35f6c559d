"""Validators kept between processes (definition/validator_cache.py), seen from real processes.

Each check runs a fresh interpreter (the cache is for the next process) with its own
``WORKFLOW_CACHE_DIR``; a build is counted by wrapping pydantic's own ``model_rebuild``, which
only a miss reaches.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import cli, install_plugin

PROBE = """
import json, sys
import pydantic
builds = []
real = pydantic.BaseModel.model_rebuild.__func__
def counting(cls, **kwargs):
    builds.append(cls.__name__)
    return real(cls, **kwargs)
pydantic.BaseModel.model_rebuild = classmethod(counting)
from jupyter_workflows.definition.loader import load_workflow
workflow = load_workflow(sys.argv[1])
print(json.dumps({"builds": builds, "workflow": workflow.model_dump(mode="json")}))
"""

WORKFLOW = {
    "name": "kept",
    "tasks": [
        {"id": "a", "type": "shell", "command": "echo a", "retry": {"attempts": 2}},
        {"id": "b", "type": "http", "url": "http://127.0.0.1:9/x", "depends_on": ["a"]},
    ],
}


def _probe(path: Path, cache: Path | str, extra_path: str = "") -> dict:
    env = {**os.environ, "WORKFLOW_CACHE_DIR": str(cache)}
    if extra_path:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (extra_path, env.get("PYTHONPATH")) if p)
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(path)], capture_output=True, text=True, env=env
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


@pytest.fixture
def workflow_file(tmp_path: Path) -> Path:
    path = tmp_path / "kept.json"
    path.write_text(json.dumps(WORKFLOW))
    return path


def test_a_second_process_restores_the_validators_and_gets_the_same_workflow(
    tmp_path: Path, workflow_file: Path
) -> None:
    cache = tmp_path / "cache"
    first = _probe(workflow_file, cache)
    assert {"Workflow", "ShellTask", "HttpTask"} <= set(first["builds"])
    kept = sorted(p.name.split(".")[-3] for p in (cache / "validators").iterdir())
    assert {"Workflow", "ShellTask", "HttpTask"} <= set(kept)

    second = _probe(workflow_file, cache)
    assert second["builds"] == []
    assert second["workflow"] == first["workflow"]


def test_errors_are_the_same_from_a_kept_validator(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "name: bad\ntasks:\n  - id: a\n    type: shell\n    command: 3\n    retry: {attempts: -1}\n"
        "  - id: b\n    type: http\n    url: 7\n"
    )
    env = {"WORKFLOW_CACHE_DIR": str(tmp_path / "cache")}
    cold = cli(tmp_path, "validate", "bad.yaml", env=env)
    assert any((tmp_path / "cache" / "validators").iterdir())
    warm = cli(tmp_path, "validate", "bad.yaml", env=env)
    assert cold.returncode == warm.returncode == 1
    assert "bad.yaml:5" in cold.stderr  # located, as always
    assert (warm.stdout, warm.stderr) == (cold.stdout, cold.stderr)


PLUGIN_V1 = """
from typing import Literal
from jupyter_workflows.definition.model import TaskBase
from jupyter_workflows.tasks.base import TaskResult, TaskType

class GreetTask(TaskBase):
    type: Literal["greet"]
    who: str = "world"

class GreetType(TaskType):
    name = "greet"
    model = GreetTask

    async def run(self, task, ctx):
        return TaskResult(result=task.who)
"""


def _greet_plugin(tmp_path: Path) -> tuple[Path, Path]:
    """A task type installed as pip would install it: (its site folder, its module file)."""
    site = tmp_path / "site"
    entry_points = "[jupyter_workflows.tasks]\ngreet = greet_plugin:GreetType\n"
    return site, install_plugin(site, "greet_plugin", PLUGIN_V1, entry_points)


def test_an_edited_model_is_built_again_not_restored(tmp_path: Path) -> None:
    site, module = _greet_plugin(tmp_path)
    path = tmp_path / "greet.json"
    path.write_text(json.dumps({"name": "g", "tasks": [{"id": "a", "type": "greet"}]}))
    cache = tmp_path / "cache"

    assert _probe(path, cache, str(site))["workflow"]["tasks"][0]["who"] == "world"
    assert _probe(path, cache, str(site))["builds"] == []  # kept

    # The plugin's next version changes the default: a kept validator would still say "world".
    module.write_text(PLUGIN_V1.replace('who: str = "world"', 'who: str = "everyone"  # v2'))
    again = _probe(path, cache, str(site))
    assert "GreetTask" in again["builds"]
    assert again["workflow"]["tasks"][0]["who"] == "everyone"


def test_a_corrupt_or_foreign_entry_is_not_used(tmp_path: Path, workflow_file: Path) -> None:
    cache = tmp_path / "cache"
    expected = _probe(workflow_file, cache)["workflow"]
    entries = list((cache / "validators").iterdir())

    for entry in entries:
        entry.write_bytes(entry.read_bytes()[:40])  # cut short
    corrupt = _probe(workflow_file, cache)
    assert "Workflow" in corrupt["builds"] and corrupt["workflow"] == expected
    assert _probe(workflow_file, cache)["builds"] == []  # written whole again

    for entry in (cache / "validators").iterdir():
        entry.chmod(0o666)  # others may have written it: never unpickled
    foreign = _probe(workflow_file, cache)
    assert "Workflow" in foreign["builds"] and foreign["workflow"] == expected


def test_switched_off_or_unwritable_the_cache_only_costs_the_build(
    tmp_path: Path, workflow_file: Path
) -> None:
    off = _probe(workflow_file, "")
    assert "Workflow" in off["builds"]
    assert _probe(workflow_file, "")["builds"] == off["builds"]

    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the folder would go")
    assert _probe(workflow_file, blocked)["workflow"] == off["workflow"]
    assert blocked.read_text() == "a file where the folder would go"


def test_the_cli_says_nothing_about_the_cache(tmp_path: Path) -> None:
    (tmp_path / "w.json").write_text(json.dumps(WORKFLOW))
    (tmp_path / "a-file").write_text("")
    env = {"WORKFLOW_CACHE_DIR": str(tmp_path / "a-file" / "cache")}
    done = cli(tmp_path, "validate", "w.json", env=env)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    assert done.stdout.strip() == "w.json: valid"


def test_a_model_whose_file_changed_after_import_is_not_kept(tmp_path: Path) -> None:
    """The class in memory is the file as it was: kept under the new file's stamp, it would be
    restored for the new code."""
    site, module = _greet_plugin(tmp_path)
    path = tmp_path / "greet.json"
    path.write_text(json.dumps({"name": "g", "tasks": [{"id": "a", "type": "greet"}]}))
    cache = tmp_path / "cache"
    script = (
        "import os, sys, time; import greet_plugin; time.sleep(0.01); "
        f"os.utime({str(module)!r}); "
        "from jupyter_workflows.definition.loader import load_workflow; "
        f"load_workflow({str(path)!r})"
    )
    env = {**os.environ, "WORKFLOW_CACHE_DIR": str(cache)}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(site), env.get("PYTHONPATH")) if p)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    kept = [p.name for p in (cache / "validators").iterdir()]
    assert any("Workflow" in name for name in kept)
    assert not any("GreetTask" in name for name in kept), kept
