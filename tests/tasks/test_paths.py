"""The path policy: real folders, real symlinks (dangling and looping ones too), a real config."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from jupyter_workflows.errors import ConfigError
from jupyter_workflows.project import allowed_paths
from jupyter_workflows.tasks.paths import PathPolicy, PathRefused, check_workflow, glob_folder


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    (root / "data").mkdir(parents=True)
    (tmp_path / "outside").mkdir()
    return root


def test_paths_inside_the_root_resolve_to_where_they_lead(root: Path) -> None:
    policy = PathPolicy(root)
    assert policy.resolve("data/x.json") == root / "data" / "x.json"
    assert policy.resolve("data/../data/./x.json") == root / "data" / "x.json"
    assert policy.resolve(str(root / "new" / "file")) == root / "new" / "file"
    (root / "alias").symlink_to(root / "data")  # a symlink within the project is fine
    assert policy.resolve("alias/x.json") == root / "data" / "x.json"
    assert policy.resolve("") == root


@pytest.mark.parametrize(
    "given",
    ["..", "../outside/x", "data/../../outside", "/etc/passwd", "~/x", "link/x", "dangling"],
)
def test_paths_leading_out_are_refused_with_everything_needed_to_act(
    root: Path, given: str
) -> None:
    (root / "link").symlink_to(root.parent / "outside")
    (root / "dangling").symlink_to(root.parent / "outside" / "not-yet")  # a write would land there
    with pytest.raises(PathRefused) as caught:
        PathPolicy(root).resolve(given, task_id="t", field="output")
    message = str(caught.value)
    assert message.startswith(f"task 't', field 'output': path {given!r} ")
    assert f"outside the project root {root}: refused" in message
    assert f'list it in "allowedPaths" in {root / "workflows" / "config.json"}' in message
    assert caught.value.reason == message.split(": ", 1)[1]


def test_loops_and_nul_bytes_are_refused_not_crashes(root: Path) -> None:
    (root / "loop").symlink_to(root / "loop")
    policy = PathPolicy(root)
    for given in ("loop/x", "data/a\x00b"):
        with pytest.raises(PathRefused, match="cannot be resolved"):
            policy.resolve(given, field="cwd")


def test_allowed_folders_come_from_the_config(root: Path, tmp_path: Path) -> None:
    config = root / "workflows" / "config.json"
    config.parent.mkdir()
    config.write_text(json.dumps({"allowedPaths": ["../outside", str(tmp_path / "abs")]}))
    assert allowed_paths(root) == (tmp_path / "outside", tmp_path / "abs")
    policy = PathPolicy.for_project(root)
    assert policy.resolve("../outside/x") == tmp_path / "outside" / "x"
    assert policy.resolve(str(tmp_path / "abs" / "y")) == tmp_path / "abs" / "y"
    with pytest.raises(PathRefused, match=r"and the allowed folders \(.*outside, .*abs\)"):
        policy.resolve("../elsewhere")
    for bad in ("/tmp", [""], [1], {"a": 1}):
        config.write_text(json.dumps({"allowedPaths": bad}))
        with pytest.raises(ConfigError, match=r"config\.json: 'allowedPaths' must be a list"):
            allowed_paths(root)
    config.write_text("{}")
    assert allowed_paths(root) == ()


@pytest.mark.parametrize(
    ("pattern", "folder"),
    [
        ("data/*.json", "data"),
        ("data/**/x.csv", "data"),
        ("*.json", "."),
        ("../outside/[ab].json", "../outside"),
        ("/etc/*", "/etc"),
        ("data/a.json", "data"),
        ("a.json", "."),
    ],
)
def test_glob_folder_is_what_a_pattern_can_reach(pattern: str, folder: str) -> None:
    assert glob_folder(pattern) == folder


def test_check_workflow_finds_literal_paths_only(root: Path) -> None:
    data = {
        "name": "x",
        "tasks": [
            {"id": "a", "type": "python", "script": "../x.py", "cwd": "data"},
            {"id": "b", "type": "python", "script": "${env.S}"},
            {"id": "c", "type": "database", "config": {"connection": "sqlite:////etc/x.db"}},
            {"id": "d", "type": "database", "config": {"connection": "sqlite:///:memory:"}},
            {"id": "e", "type": "docker", "image": "x", "volumes": ["ok:/a", "/srv:/b"]},
            {"id": "f", "type": "data_processor", "input": {"path": "/var/*.json"},
             "processor": {"script": "p.js"}, "output": {"path": "../${input}.json"}},
            {"id": "g", "type": "no-such-type", "script": "../x"},
            {"id": "h", "type": "parallel", "tasks": [{"id": "i", "type": "shell",
                                                      "command": "x", "cwd": "$${X}/../.."}]},
        ],
    }  # fmt: skip
    found = [(f.path, f.message.split(" ", 2)[1]) for f in check_workflow(data, PathPolicy(root))]
    assert found == [
        (("tasks", 0, "script"), "'../x.py'"),
        (("tasks", 2, "config", "connection"), "'/etc/x.db'"),
        (("tasks", 4, "volumes", 1), "'/srv'"),
        (("tasks", 5, "input", "path"), "'/var'"),
        (("tasks", 7, "tasks", 0, "cwd"), "'${X}/../..'"),
    ]
