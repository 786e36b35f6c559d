"""The project layout: its root, its configuration, its store and outputs, its workflow files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from jupyter_workflows import project
from jupyter_workflows.errors import ConfigError, DefinitionError
from jupyter_workflows.store import default_store_path

WEBHOOK = {
    "name": "hooked",
    "trigger": {"type": "webhook", "config": {"webhook": "/hook"}},
    "tasks": [{"id": "t", "type": "shell", "command": "true"}],
}


def write_config(root: Path, text: str, name: Path = project.CONFIG_FILE) -> None:
    (root / name).parent.mkdir(parents=True, exist_ok=True)
    (root / name).write_text(text)


# -- the root ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "marker", ["workflows/config.json", ".workflow-config.json", "workflows/definitions/"]
)
def test_the_root_is_the_nearest_folder_above_with_a_marker(tmp_path: Path, marker: str) -> None:
    root = tmp_path / "proj"
    deep = root / "notebooks" / "deeper"
    deep.mkdir(parents=True)
    if marker.endswith("/"):
        (root / marker).mkdir(parents=True)
    else:
        write_config(root, "{}", Path(marker))
    assert project.find_root(deep) == root.resolve()
    assert project.find_root(root) == root.resolve()
    inner = deep / "workflows" / "definitions"  # a nearer project wins, as with nested repos
    inner.mkdir(parents=True)
    assert project.find_root(deep / "workflows") == deep.resolve()


def test_without_a_marker_the_root_is_the_start(tmp_path: Path) -> None:
    assert project.find_root(tmp_path / ".") == tmp_path.resolve()
    assert not project.is_project(tmp_path)


def test_the_start_defaults_to_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "workflows" / "definitions").mkdir(parents=True)
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "sub")
    assert project.find_root() == tmp_path.resolve()
    assert project.project_root() == tmp_path.resolve()


def test_an_option_or_the_environment_overrides_the_search(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "found" / "workflows" / "definitions").mkdir(parents=True)
    (tmp_path / "env").mkdir()
    (tmp_path / "option").mkdir()
    monkeypatch.chdir(tmp_path / "found")
    assert project.project_root() == (tmp_path / "found").resolve()
    monkeypatch.setenv(project.ROOT_ENV, str(tmp_path / "env"))
    assert project.project_root() == (tmp_path / "env").resolve()
    assert project.project_root(tmp_path / "option") == (tmp_path / "option").resolve()
    monkeypatch.setenv(project.ROOT_ENV, "")  # empty is unset
    assert project.project_root() == (tmp_path / "found").resolve()
    with pytest.raises(ConfigError, match="is not a directory"):
        project.project_root(tmp_path / "missing")


def test_file_arguments_resolve_against_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root, cwd = tmp_path / "root", tmp_path / "cwd"
    for folder in (root, cwd):
        folder.mkdir()
        (folder / "wf.json").write_text("{}")
    monkeypatch.chdir(cwd)
    assert project.file_argument("wf.json", root) == cwd / "wf.json"
    (cwd / "wf.json").unlink()
    with pytest.raises(DefinitionError, match=r"wf.json: no such workflow file .*root/wf.json\?"):
        project.file_argument("wf.json", root)  # the hint names the file it used to mean
    with pytest.raises(DefinitionError, match="is a directory"):
        project.file_argument(".", root)


# -- configuration -------------------------------------------------------------------------


def test_default_store_without_config(tmp_path: Path) -> None:
    assert default_store_path(tmp_path) == tmp_path / "workflows" / ".executions"
    assert project.outputs_dir(tmp_path) == tmp_path / "workflows" / "outputs"
    assert project.days_to_keep(tmp_path) == 30


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


def test_the_original_systems_config_file_is_read_unless_workflows_config_exists(
    tmp_path: Path,
) -> None:
    legacy = {"storagePath": "legacy-runs", "cleanup": {"daysToKeep": 3}}
    write_config(tmp_path, json.dumps(legacy), project.LEGACY_CONFIG_FILE)
    assert project.config_file(tmp_path) == tmp_path / ".workflow-config.json"
    assert default_store_path(tmp_path) == tmp_path / "legacy-runs"
    assert project.days_to_keep(tmp_path) == 3
    write_config(tmp_path, json.dumps({"cleanup": {"daysToKeep": 9}}))
    # workflows/config.json wins whole: nothing is taken from the other file
    assert project.config_file(tmp_path) == tmp_path / "workflows" / "config.json"
    assert project.read_config(tmp_path) == {"cleanup": {"daysToKeep": 9}}
    assert default_store_path(tmp_path) == tmp_path / "workflows" / ".executions"
    write_config(tmp_path, '{"storagePath": ""}', project.LEGACY_CONFIG_FILE)
    (tmp_path / project.CONFIG_FILE).unlink()
    with pytest.raises(ConfigError, match=r"\.workflow-config\.json: 'storagePath'"):
        default_store_path(tmp_path)


# -- workflow files ------------------------------------------------------------------------


def make_layout(root: Path) -> None:
    """Workflow files of every kind, and files the rule must leave out."""
    files = {
        "workflows/definitions/a.json": "{}",
        "workflows/definitions/nested/b.yml": "{}",
        "workflows/definitions/notes.txt": "",
        "workflows/definitions/.hidden.json": "{}",
        "analysis/report.workflow.yaml": json.dumps(WEBHOOK),
        "deep/er/c.Workflow.JSON": "{}",
        "plain.json": "{}",
        "analysis/definitions/x.json": "{}",
        ".cache/old.workflow.json": "{}",
        "node_modules/pkg/x.workflow.json": "{}",
        "venv/lib/x.workflow.json": "{}",
        "workflows/.executions/artifacts/x.workflow.json": "{}",
        "runs/y.workflow.json": "{}",  # the store, when storagePath puts it there
    }
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    write_config(root, json.dumps({"storagePath": "runs"}))


def test_workflow_files_follow_one_rule(tmp_path: Path) -> None:
    make_layout(tmp_path)
    outside = tmp_path.parent / f"{tmp_path.name}-outside.workflow.json"
    outside.write_text("{}")
    (tmp_path / "link.workflow.json").symlink_to(outside)  # points out of the project
    found = [p.relative_to(tmp_path).as_posix() for p in project.workflow_files(tmp_path)]
    assert found == [
        "analysis/report.workflow.yaml",
        "deep/er/c.Workflow.JSON",
        "workflows/definitions/a.json",
        "workflows/definitions/nested/b.yml",
    ]


def test_the_walk_is_capped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("a", "b", "c"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "w.workflow.json").write_text("{}")
    monkeypatch.setattr(project, "MAX_DIRS", 2)  # the root and the first folder
    assert [p.parent.name for p in project.workflow_files(tmp_path)] == ["a"]


def test_discovery_loads_the_valid_files_and_reports_the_others(tmp_path: Path) -> None:
    make_layout(tmp_path)
    lines: list[str] = []
    found = project.discover_workflows(tmp_path, log=lines.append)
    assert [(f.file.name, f.workflow.name, f.trigger_type) for f in found] == [
        ("report.workflow.yaml", "hooked", "webhook")
    ]
    assert sum(line.startswith("skipping ") for line in lines) == 3  # the three "{}" files


def test_the_server_lists_what_serve_discovers(tmp_path: Path) -> None:
    from jupyter_workflows.server.discovery import find_workflow_files

    make_layout(tmp_path)
    root = tmp_path.resolve()
    listed = find_workflow_files(root)
    assert [root / rel for rel in listed] == project.workflow_files(root)
    # A server started in a sub-folder lists the project's files it can serve: those under it.
    assert find_workflow_files(root / "workflows", project_root=root) == [
        "definitions/a.json",
        "definitions/nested/b.yml",
    ]


def test_the_project_module_imports_only_errors_and_definitions() -> None:
    import ast

    tree = ast.parse(Path(project.__file__).read_text())
    imported = {
        node.module
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module
    }
    assert all(m == "errors" or m.startswith("definition") for m in imported), imported
    absolute = {n.names[0].name for n in ast.walk(tree) if isinstance(n, ast.Import)}
    assert not {name for name in absolute if name.startswith("jupyter_workflows")}
