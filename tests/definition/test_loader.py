"""Reading definitions: files, formats, parse errors, the report, ``load_workflow``."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from jupyter_workflows.definition import locate
from jupyter_workflows.definition.loader import (
    Locator,
    ValidationReport,
    load_workflow,
    parse_text,
    validate_file,
    validate_text,
)
from jupyter_workflows.definition.model import Workflow
from jupyter_workflows.errors import DefinitionError, Problem, ValidationError

FIXTURES = Path(__file__).parents[1] / "fixtures" / "validate"
SPEC_EXAMPLES = ["ci-cd-workflow.json", "scheduled-tasks.json", "development-workflow.json"]


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


def where(problem: Problem) -> tuple[object, ...]:
    return (problem.line, problem.task_id, problem.field, problem.message)


GOOD_YAML = """
name: demo
tasks:
  - id: build
    type: shell
    command: make
  - id: test
    type: shell
    command: make test ${tasks.build.result}
    depends_on: [build]
"""


# --- rule 1: the file itself


def test_missing_file_is_one_problem_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.json"
    report = validate_file(path)
    assert not report.ok and report.workflow is None
    assert report.problems == [Problem("no such workflow file", file=str(path))]
    with pytest.raises(DefinitionError, match="nope.json: no such workflow file"):
        load_workflow(path)


def test_directory_and_undecodable_file_are_problems(tmp_path: Path) -> None:
    assert [p.message for p in validate_file(tmp_path).problems] == [
        "is a directory, not a workflow file"
    ]
    binary = tmp_path / "bad.json"
    binary.write_bytes(b'{"name": "\xff"}')
    (problem,) = validate_file(binary).problems
    assert problem.file == str(binary) and problem.message.startswith("not UTF-8 text")


# --- rule 2: malformed text, located by the parser


def test_malformed_json_has_line_and_column(tmp_path: Path) -> None:
    path = write(tmp_path, "wf.json", '{\n  "name": "x",\n  "tasks": [,]\n}\n')
    (problem,) = validate_file(path).problems
    assert (problem.file, problem.line, problem.column) == (str(path), 3, 13)
    assert problem.message == "invalid JSON: Expecting value"


def test_malformed_yaml_has_line_and_column(tmp_path: Path) -> None:
    path = write(tmp_path, "wf.yaml", "name: x\ntasks:\n  - id: a\n    type: shell: bad\n")
    (problem,) = validate_file(path).problems
    assert (problem.line, problem.column) == (4, 16)
    assert problem.message == "invalid YAML: mapping values are not allowed in this context"


def test_parser_follows_the_extension_else_guesses(tmp_path: Path) -> None:
    yaml_text = GOOD_YAML.lstrip("\n")
    assert validate_file(write(tmp_path, "a.yml", yaml_text)).ok
    assert validate_file(write(tmp_path, "a.workflow", yaml_text)).ok  # guessed: YAML
    as_json = json.dumps({"name": "x", "tasks": [{"id": "a", "type": "shell", "command": "x"}]})
    assert validate_file(write(tmp_path, "a.txt", as_json)).ok  # guessed: JSON
    (problem,) = validate_file(write(tmp_path, "b.json", yaml_text)).problems
    assert problem.message.startswith("invalid JSON")


def test_parse_text_raises_one_located_problem() -> None:
    with pytest.raises(ValidationError) as caught:
        parse_text('{"name": }', source="cell")
    assert [(p.file, p.line, p.column) for p in caught.value.problems] == [("cell", 1, 10)]
    with pytest.raises(ValidationError):
        parse_text("a: [", fmt="yaml")


# --- rule 3: the top level


@pytest.mark.parametrize(
    ("text", "got"), [("- a\n- b\n", "a list"), ("", "an empty document"), ("42", "a int")]
)
def test_top_level_must_be_a_mapping(tmp_path: Path, text: str, got: str) -> None:
    (problem,) = validate_file(write(tmp_path, "wf.yaml", text)).problems
    assert problem.message == f"the top level must be a mapping with 'name' and 'tasks', got {got}"


# --- locating


def test_locator_maps_paths_to_lines_in_json_and_yaml() -> None:
    text = '{\n  "name": "x",\n  "tasks": [\n    {"id": "a",\n     "command": "y"}\n  ]\n}'
    data, locator = parse_text(text)
    assert data["tasks"][0]["command"] == "y"
    assert locator.line_of(("tasks", 0, "command")) == 5
    assert locator.position(("tasks", 0, "id")) == (4, 6)
    assert locator.line_of(("tasks", 0, "missing", "deeper")) == 4  # nearest known ancestor
    _, yaml_locator = parse_text(GOOD_YAML, fmt="yaml")
    assert yaml_locator.line_of(("tasks", 1, "depends_on", 0)) == 10
    assert Locator().line_of(("tasks",)) is None


def test_a_json_path_found_alone_is_where_the_full_index_puts_it() -> None:
    """A few problems are located by walking down their paths (no index of the whole file);
    both ways must agree, repeated keys included (the last one counts, as in json.loads)."""
    text = json.dumps(
        {"name": "x", "tasks": [{"id": f"t{i}", "env": {"a": [1, {"b": "c"}]}} for i in range(4)]},
        indent=1,
    ).replace('"name": "x"', '"name": "x", "n\\u0061me": "y"')
    index = locate.json_positions(text)
    ends: dict[int, int] = {}
    for path, position in index.items():
        assert locate.json_position(text, path, ends) == position, path
    assert locate.json_position(text, ("tasks", 9, "id")) == index[("tasks",)]


def test_positions_are_computed_only_when_there_is_a_problem(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fail(text: str) -> dict[object, object]:
        raise AssertionError("positions computed on the happy path")

    monkeypatch.setattr(locate, "json_positions", fail)
    monkeypatch.setattr(locate, "yaml_positions", fail)
    assert validate_file(write(tmp_path, "wf.yaml", GOOD_YAML)).ok
    assert validate_file(FIXTURES / "scheduled-tasks.json").ok


def test_validate_text_shifts_lines_for_a_notebook_cell() -> None:
    report = validate_text(GOOD_YAML.replace("command: make\n", "comand: make\n"), line_offset=10)
    assert [(p.line, p.field) for p in report.errors] == [(14, "command"), (16, "comand")]
    (problem,) = validate_text("name: [\n", source="cell", line_offset=3).problems
    assert (problem.file, problem.line) == ("cell", 5)


# --- several problems at once, each at its line


def test_json_file_reports_every_problem_with_its_line(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "wf.json",
        """
        {
          "name": "demo",
          "tasks": [
            {"id": "a", "type": "shel", "command": "x"},
            {"id": "b", "type": "shell", "comand": "x",
             "depends_on": ["a", "zz"]},
            {"type": "shell", "command": "echo ${tasks.b.result}"},
            {"id": "a", "type": "http", "url": "http://h", "timeout": 5}
          ]
        }
        """,
    )
    report = validate_file(path)
    assert [where(p) for p in report.problems] == [
        (4, "a", "type", "unknown task type 'shel'; expected one of shell, python, javascript, "
         "http, docker, data_processor, database, conditional, parallel, loop, notebook; "
         "did you mean 'shell'?"),
        (5, "b", "command", "missing required field 'command'"),
        (5, "b", "comand", "unknown field 'comand'; did you mean 'command'?"),
        (6, "b", "depends_on[1]", "depends on unknown task 'zz'"),
        (7, None, "tasks[2]", "missing 'id': every top-level task needs one"),
        (7, None, "tasks[2].command",
         "refers to task 'b', which is not upstream of this task (add it to depends_on)"),
        (8, "a", "id", "duplicate task id 'a' (first used at line 4)"),
        (8, "a", "timeout", "timeout 5 looks like seconds; an http task's timeout number is "
         'milliseconds (as in the original format), write "5s" or 5000'),
    ]  # fmt: skip
    assert all(p.file == str(path) for p in report.problems)
    assert [p.severity for p in report.problems].count("warning") == 1


def test_yaml_file_reports_every_problem_with_its_line(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "wf.yaml",
        """
        name: demo
        tasks:
          - id: a
            type: shell
            command: echo ${env.}
            depends_on: [c]
          - id: b
            type: conditional
            condition: ${tasks.a.exit_code} = 0
            then:
              type: shell
              command: [1]
          - id: c
            type: python
            depends_on: a
        """,
    )
    report = validate_file(path)
    assert [where(p) for p in report.problems] == [
        (5, "a", "command", "invalid expression: empty name in reference (stray '.') at "
         "position 11 in 'echo ${env.}'"),
        (6, "a", "depends_on", "dependency cycle: a -> c -> a"),
        (9, "b", "condition", "invalid condition: unexpected '=': use '==' to compare at "
         "position 21 in '${tasks.a.exit_code} = 0'"),
        (12, "b", "then.command", "expected a valid string, got a list"),
        (13, "c", None, "a python task needs exactly one of 'script' (a file) or 'code'"),
    ]  # fmt: skip


# --- the spec's files, and the report


@pytest.mark.parametrize("name", SPEC_EXAMPLES)
def test_the_original_format_examples_validate_unchanged(name: str) -> None:
    report = validate_file(FIXTURES / name)
    assert report.ok, str(report)
    assert isinstance(report.workflow, Workflow)
    assert load_workflow(FIXTURES / name).name == report.workflow.name


def test_the_spec_http_timeout_in_milliseconds_loads_as_such() -> None:
    report = validate_file(FIXTURES / "ci-cd-workflow.json")
    assert report.ok and report.workflow is not None and report.warnings == []
    assert report.workflow.task("health-check").timeout == 10.0  # "timeout": 10000 (ms)


def test_valid_file_is_ok_with_the_workflow(tmp_path: Path) -> None:
    report = validate_file(write(tmp_path, "wf.yaml", GOOD_YAML))
    assert report.ok and report.problems == [] and report.errors == []
    assert report.workflow is not None and [t.id for t in report.workflow.tasks] == [
        "build", "test"
    ]  # fmt: skip
    assert str(report) == f"{tmp_path / 'wf.yaml'}: ok"


def test_report_renders_each_problem_on_a_located_line() -> None:
    report = validate_text(GOOD_YAML + "    timeout: 3\n    retry: {attempts: 1}\n", source="s")
    assert isinstance(report, ValidationReport) and report.ok
    assert str(report) == (
        "s:12:13, task 'test', field 'retry.attempts': warning: "
        "retry with attempts 1 never retries (attempts counts the first try too)"
    )
    as_dict = report.to_dict()
    assert (as_dict["ok"], as_dict["errors"], as_dict["warnings"]) == (True, 0, 1)
    assert as_dict["problems"][0]["field"] == "retry.attempts"
    json.dumps(as_dict)


# --- load_workflow


def test_load_workflow_raises_validation_error_with_the_problems(tmp_path: Path) -> None:
    path = write(tmp_path, "wf.yaml", GOOD_YAML.replace("depends_on: [build]", "depends_on: [x]"))
    with pytest.raises(ValidationError) as caught:
        load_workflow(path)
    assert [where(p) for p in caught.value.problems] == [
        (8, "test", "command",
         "refers to task 'build', which is not upstream of 'test' (add it to depends_on)"),
        (9, "test", "depends_on[0]", "depends on unknown task 'x'"),
    ]  # fmt: skip
    assert "2 problem(s)" in str(caught.value) and "https://" not in str(caught.value)


def test_load_workflow_from_a_dict_has_no_lines() -> None:
    task: dict[str, str] = {"id": "a", "type": "shell"}
    data = {"name": "x", "tasks": [task]}
    with pytest.raises(ValidationError) as caught:
        load_workflow(data)
    assert caught.value.problems == [
        Problem("missing required field 'command'", file="<dict>", task_id="a", field="command")
    ]
    task["command"] = "true"
    assert load_workflow(data).tasks[0].id == "a"


def test_load_workflow_resolves_relative_paths_against_the_project_root(tmp_path: Path) -> None:
    write(tmp_path, "wf.yml", GOOD_YAML)
    assert load_workflow("wf.yml", project_root=tmp_path).name == "demo"


def test_importing_the_loader_and_reading_json_does_not_import_yaml() -> None:
    code = (
        "import sys; from jupyter_workflows.definition.loader import validate_file; "
        f"assert validate_file({str(FIXTURES / 'scheduled-tasks.json')!r}).ok; "
        "assert 'yaml' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
