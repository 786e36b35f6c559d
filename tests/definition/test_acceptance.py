"""The acceptance check (definition/acceptance.py): never says yes where the model says no.

Each case is judged twice, by ``acceptance.accepts`` and by ``Workflow.model_validate``: an
accepted case must validate, and to the same values (defaults, normalisations, moved fields),
so that the check follows the model rather than a copy of it. The cases are every fixture
workflow, thousands of seeded mutations of them, and the generated hostile files.
"""

from __future__ import annotations

import copy
import json
import os
import random
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError as PydanticValidationError

from jupyter_workflows.definition import acceptance, acceptance_build, limits, parsing, validate
from jupyter_workflows.definition.model import Workflow
from jupyter_workflows.plugins import TASK_TYPES
from jupyter_workflows.tasks.shell import ShellType
from tests.adversarial.hostile_files import generate

REPO = Path(__file__).parents[2]
FIXTURES = sorted(
    [*REPO.glob("tests/fixtures/**/*.json"), *REPO.glob("tests/fixtures/**/*.yaml")]
    + [*REPO.glob("workflows/definitions/*.json"), *REPO.glob("workflows/definitions/*.yaml")]
)


def fixture_data() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for path in FIXTURES:
        data = parsing.parse(path.read_text(), str(path), None, 0)[0]
        if isinstance(data, dict) and "tasks" in data:
            found.append((str(path.relative_to(REPO)), data))
    return found


def too_many_tasks(data: dict[str, Any]) -> bool:
    """Beyond the limits the loader checks before any validation."""
    tasks = [t for _, top in validate.top_tasks(data) for t in validate.walk_tasks(top, ())]
    return len(tasks) > limits.MAX_TASKS


def accepted_value(data: Any) -> Any:
    description = acceptance.description()
    # fresh copies the check's field mappings into plain dicts, as model_dump() gives them
    return acceptance.fresh(acceptance._Checker(description).check(description["root"], data))


def judge(data: Any) -> str:
    """'accepted' (and the model agrees, to the value), 'left' (to the model) or a failure."""
    if not acceptance.accepts(data):
        return "left"
    try:
        model = Workflow.model_validate(copy.deepcopy(data))
    except PydanticValidationError as exc:
        return f"UNSOUND: accepted, the model says {exc.errors()[:1]} for {json.dumps(data)[:400]}"
    if accepted_value(data) != model.model_dump():
        return f"DIFFERENT: the values differ for {json.dumps(data)[:400]}"
    return "accepted"


def test_the_committed_description_is_what_the_models_write() -> None:
    assert acceptance.SCHEMA_FILE.read_text() == acceptance_build.text(), (
        "the models changed: run python -m jupyter_workflows.definition.acceptance_build"
    )


def test_the_description_covers_every_built_in_type_without_an_opaque_node() -> None:
    description = acceptance.description()
    assert set(description["tasks"]) == set(TASK_TYPES.builtin)
    assert '"opaque"' not in acceptance.SCHEMA_FILE.read_text()


def test_every_fixture_workflow_is_accepted_as_the_model_validates_it() -> None:
    verdicts = {name: judge(data) for name, data in fixture_data()}
    assert len(verdicts) >= 20
    assert verdicts == dict.fromkeys(verdicts, "accepted")


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if prefix:
        yield prefix
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _paths(value, (*prefix, index))


REPLACEMENTS: list[Any] = [
    None, True, False, 0, -1, 1.5, 2**70, float("inf"), float("nan"), "", "x", "5", "5m",
    "a\nb", "\ud800", "shell", "GET", "github", "cron", [], {}, ["x"], {"a": 1},
    {"type": "shell", "command": "x"}, {"type": "nope"}, "../x", "/abs",
]  # fmt: skip


def mutate(data: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    data = copy.deepcopy(data)
    for _ in range(rng.choice((1, 1, 2, 3))):
        path = rng.choice(list(_paths(data)))
        parent: Any = data
        for key in path[:-1]:
            parent = parent[key]
        roll = rng.random()
        if roll < 0.15 and isinstance(parent, dict):
            del parent[path[-1]]
        elif roll < 0.25 and isinstance(parent, dict):
            parent[rng.choice(("zz", "id", "type", "then", "config", "data"))] = "x"
        else:
            parent[path[-1]] = copy.deepcopy(rng.choice(REPLACEMENTS))
    return data


@pytest.mark.parametrize("seed", range(4))
def test_mutated_workflows_are_never_accepted_where_the_model_refuses(seed: int) -> None:
    rng = random.Random(seed)
    workflows = fixture_data()
    verdicts = [judge(mutate(rng.choice(workflows)[1], rng)) for _ in range(1500)]
    wrong = [v for v in verdicts if v not in ("accepted", "left")]
    assert wrong == []
    # the check is worth having: it decides a good share of what the model would accept
    assert verdicts.count("accepted") > 150


def test_the_generated_hostile_files_are_never_accepted_where_the_model_refuses(
    tmp_path: Path,
) -> None:
    verdicts = []
    for case in generate(tmp_path):
        try:  # read_file, not read_text: the corpus has a FIFO, which would block
            data, excess, _ = parsing.parse(parsing.read_file(case.path), case.name, None, 0)
        except Exception:  # unreadable or undecodable: never reaches it
            continue
        if isinstance(data, dict) and not excess and not too_many_tasks(data):
            verdicts.append((case.name, judge(data)))
    assert len(verdicts) > 100
    assert [v for v in verdicts if v[1] not in ("accepted", "left")] == []


def shell(**fields: Any) -> dict[str, Any]:
    return {"name": "n", "tasks": [{"id": "a", "type": "shell", "command": "x", **fields}]}


def task(**fields: Any) -> dict[str, Any]:
    return {"name": "n", "tasks": [{"id": "a", **fields}]}


REFUSED = {
    "attempts-0": shell(retry={"attempts": 0}),
    "jitter-2": shell(retry={"jitter": 2}),
    "negative-timeout": shell(timeout=-1),
    "resource-0": shell(resources={"GPU": 0}),
    "bad-id": task(type="shell", command="x", id="a b"),
    "unknown-field": shell(comand="x"),
    "missing-command": task(type="shell"),
    "empty-name": {"name": "", "tasks": [{"id": "a", "type": "shell", "command": "x"}]},
    "no-tasks": {"name": "n", "tasks": []},
    "http-method": task(type="http", url="http://127.0.0.1/", method="fetch"),
    "http-data-and-body": task(type="http", url="http://127.0.0.1/", data=1, body=2),
    "basic-auth": task(type="http", url="http://127.0.0.1/", auth={"type": "basic"}),
    "cache-outside": shell(cache={"inputs": ["../x"]}),
    "loop-twice": task(type="loop", items=[1], then={"type": "shell", "command": "x"},
                       task={"type": "shell", "command": "y"}),
    "loop-nothing": task(type="loop", items=[1]),
    "python-both": task(type="python", script="a.py", code="pass"),
    "database-nothing": task(type="database", config={"connection": "sqlite:///x.db"}),
    "docker-nothing": task(type="docker"),
    "docker-twice": task(type="docker", image="a", config={"image": "b"}),
    "parallel-empty": task(type="parallel", tasks=[]),
    "webhook-tolerance": {**shell(), "trigger": {"type": "webhook",
                          "config": {"webhook": "/x", "tolerance": 5}}},
    "cron-max-catchup": {**shell(), "trigger": {"type": "cron",
                         "config": {"schedule": "* * * * *", "max_catchup": 0}}},
    "watch-outside": {**shell(), "trigger": {"type": "file_change", "config": {"files": ["/x"]}}},
    "unknown-trigger": {**shell(), "trigger": {"type": "hourly"}},
    "alert-twice": {**shell(), "alerts": [
        {"name": "a", "condition": "true", "template": "t"},
        {"name": "a", "condition": "true", "template": "t"}]},
    "alert-condition": {**shell(), "alerts": [{"name": "a", "condition": "((", "template": "t"}]},
    "channel": {**shell(), "notifications": {"channels": ["pager"]}},
    "environment-clash": {**shell(), "environment": {"A": "1"},
                          "defaults": {"environment": {"A": "2"}}},
    "secret-name": {**shell(), "secrets": ["a b"]},
}  # fmt: skip


@pytest.mark.parametrize("name", REFUSED)
def test_what_the_model_refuses_the_check_refuses(name: str) -> None:
    data = REFUSED[name]
    with pytest.raises(PydanticValidationError):
        Workflow.model_validate(copy.deepcopy(data))
    assert acceptance.accepts(data) is False


@pytest.mark.parametrize("status", [200, [200, 201]])
def test_a_union_of_a_number_and_a_list_is_judged_without_the_model(status: Any) -> None:
    """pydantic never makes a list or a mapping of a number, so only one member can take it
    (an http task's expected_status: a number or a list of them)."""
    data = {"name": "n", "tasks": [{"id": "a", "type": "http", "url": "http://127.0.0.1/",
                                    "expected_status": status}]}  # fmt: skip
    assert judge(data) == "accepted"
    assert judge({**data, "tasks": [{**data["tasks"][0], "headers": 5}]}) == "left"


@pytest.mark.parametrize(
    "data",
    [
        {"name": "n", "tasks": [{"id": "a\n", "type": "shell", "command": "x"}]},
        {"name": "n", "tasks": [{"id": "a", "type": "shell", "command": "\ud800"}]},
        {
            "name": "n",
            "tasks": [{"id": "a", "type": "shell", "command": "x", "retry": {"attempts": 2**64}}],
        },
        {"name": "n", "tasks": [{"id": "a", "type": "shell", "command": "x", "live_output": 1}]},
        {"name": "n", "tasks": [{"id": "a", "type": "plugin", "command": "x"}]},
        {"name": "n", "tasks": [{"id": "a", "type": "shell", "command": "x", 1: "y"}]},
        {"name": 5, "tasks": [{"id": "a", "type": "shell", "command": "x"}]},
    ],
    ids=["newline-id", "surrogate", "huge-int", "int-as-bool", "plugin", "int-key", "int-name"],
)
def test_what_only_the_model_can_judge_is_left_to_it(data: dict[str, Any]) -> None:
    assert acceptance.accepts(data) is False


def test_a_task_type_replaced_in_this_process_is_left_to_the_model() -> None:
    data = {"name": "n", "tasks": [{"id": "a", "type": "shell", "command": "x"}]}
    assert acceptance.accepts(data)
    TASK_TYPES.register("shell", ShellType)
    try:
        assert not acceptance.accepts(data)
        assert acceptance.path_keys("shell") is None
    finally:
        TASK_TYPES.unregister("shell")
    assert acceptance.path_keys("shell") == ["cwd"]


PROBE = """
import json, sys
from jupyter_workflows.definition.loader import validate_file
reports = [validate_file(path) for path in sys.argv[1:]]
imported = "pydantic" in sys.modules
workflows = [type(r.workflow).__name__ for r in reports]
print(json.dumps({"before_model": imported, "workflows": workflows,
                  "reports": [r.to_dict() for r in reports]}))
"""


def test_validating_a_small_valid_file_imports_no_pydantic_until_the_model_is_asked_for(
    tmp_path: Path,
) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(
        "name: n\nenvironment: {A: 1}\ndefaults: {retry: {attempts: 2, backoff: fixed}}\n"
        "tasks:\n  - {id: a, type: shell, command: 'echo $A', depends_on: b}\n"
        "  - {id: b, type: http, url: 'http://127.0.0.1:1/', method: post}\n"
    )
    env = {**os.environ, "WORKFLOW_CACHE_DIR": ""}
    result = subprocess.run(
        [sys.executable, "-c", PROBE, str(good)],
        capture_output=True, text=True, env=env, timeout=60, check=True,
    )  # fmt: skip
    probe = json.loads(result.stdout)
    assert probe["before_model"] is False
    assert probe["workflows"] == ["Workflow"]  # built from the accepted data when read
    assert probe["reports"][0]["ok"] is True


def test_an_invalid_file_reports_what_the_model_reports(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: n\ntasks:\n  - {id: a, type: shell, command: x, retry: {attempts: 0}}\n")
    good = tmp_path / "good.yaml"
    good.write_text("name: n\ntasks:\n  - {id: a, type: shell, command: x}\n")
    env = {**os.environ, "WORKFLOW_CACHE_DIR": ""}
    result = subprocess.run(
        [sys.executable, "-c", PROBE, str(good), str(bad)],
        capture_output=True, text=True, env=env, timeout=60, check=True,
    )  # fmt: skip
    probe = json.loads(result.stdout)
    from jupyter_workflows.definition.loader import validate_file

    assert probe["reports"] == [validate_file(good).to_dict(), validate_file(bad).to_dict()]
    assert probe["reports"][1]["problems"][0]["field"] == "retry.attempts"


@pytest.mark.parametrize(
    "content", [None, "{", '{"format": 99}'], ids=["missing", "corrupt", "future"]
)
def test_without_a_usable_description_everything_goes_to_the_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, content: str | None
) -> None:
    described = tmp_path / "acceptance.json"
    if content is not None:
        described.write_text(content)
    monkeypatch.setattr(acceptance, "SCHEMA_FILE", described)
    monkeypatch.setattr(acceptance, "_loaded", None)
    assert acceptance.accepts(shell()) is False
    assert acceptance.path_keys("shell") is None
    from jupyter_workflows.definition.loader import load_for_run, validate_file
    from jupyter_workflows.tasks.paths import PathPolicy, check_workflow

    good = tmp_path / "good.yaml"
    good.write_text("name: n\ntasks:\n  - {id: a, type: shell, command: x}\n")
    report = validate_file(good)  # by the model
    assert report.ok and isinstance(report.workflow, Workflow)
    assert isinstance(load_for_run(good), Workflow)  # and a run gets the model, not plain objects
    # the path check takes the shell type's keys from its class instead
    findings = check_workflow(shell(cwd="/etc"), PathPolicy.for_project(tmp_path))
    assert [f.path for f in findings] == [("tasks", 0, "cwd")]
