"""The plain form of a workflow (definition/plain.py) reads exactly as the models do.

``workflow run`` hands the engine plain objects where it can, and everything else (notebooks,
``load_workflow``) hands it the models; a cache key, a callback or a retry delay that differed
between the two would make the same file behave differently by where it ran. So each case
is built both ways and compared field by field, class name, ``model_fields_set``, every
``model_dump`` the code uses, ``repr``, the methods the engine calls, a pickle round trip (Dask
ships tasks so) and the cache key of every task.
"""

from __future__ import annotations

import copy
import json
import os
import pickle
import random
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from jupyter_workflows.definition import acceptance, plain
from jupyter_workflows.definition.behaviour import TaskBehaviour, WorkflowBehaviour
from jupyter_workflows.definition.loader import load_for_run, load_workflow
from jupyter_workflows.definition.model import Defaults, Workflow
from jupyter_workflows.engine.fingerprint import definition_hash
from tests.definition.test_acceptance import fixture_data, mutate

DUMPS: list[dict[str, Any]] = [
    {},
    {"mode": "json"},
    {"by_alias": True},
    {"exclude_defaults": True},
    {"exclude_none": True},
    {"mode": "json", "by_alias": True, "exclude_defaults": True},
    {"mode": "json", "by_alias": True, "exclude_none": True},
    {"by_alias": True, "warnings": False},
]


def difference(plain_value: Any, model_value: Any, where: str) -> str | None:
    """Where and how the plain form differs from the model's, or None."""
    if type(plain_value).__name__ != type(model_value).__name__:
        return f"{where}: {type(plain_value).__name__} vs {type(model_value).__name__}"
    if hasattr(model_value, "model_dump"):
        if plain_value.model_fields_set != model_value.model_fields_set:
            return f"{where}: set {plain_value.model_fields_set} vs {model_value.model_fields_set}"
        for options in DUMPS:
            if plain_value.model_dump(**options) != model_value.model_dump(**options):
                return f"{where}: model_dump({options})"
        if repr(plain_value) != repr(model_value):
            return f"{where}: repr"
        for name in type(model_value).model_fields:
            found = difference(getattr(plain_value, name), getattr(model_value, name), name)
            if found:
                return f"{where}.{found}"
        if isinstance(model_value, TaskBehaviour):
            return behaviour_difference(plain_value, model_value, where)
        return None
    if isinstance(model_value, (list, dict)):
        if len(plain_value) != len(model_value):
            return f"{where}: {len(plain_value)} vs {len(model_value)} items"
        keys = model_value.keys() if isinstance(model_value, dict) else range(len(model_value))
        for key in keys:
            found = difference(plain_value[key], model_value[key], f"{where}[{key!r}]")
            if found:
                return found
        return None
    if plain_value != model_value:
        return f"{where}: {plain_value!r} vs {model_value!r}"
    return None


def behaviour_difference(plain_task: Any, model_task: Any, where: str) -> str | None:
    for name in ("gate", "exclusive"):
        if getattr(plain_task, name) != getattr(model_task, name):
            return f"{where}.{name}"
    compared = [
        (plain_task.cache_config, model_task.cache_config, "cache_config"),
        (plain_task.callbacks(True), model_task.callbacks(True), "callbacks(True)"),
        (plain_task.callbacks(False), model_task.callbacks(False), "callbacks(False)"),
    ]
    for plain_value, model_value, name in compared:
        found = difference(plain_value, model_value, f"{where}.{name}")
        if found:
            return found
    if model_task.retry is not None:
        delays = [model_task.retry.delay_before(n) for n in range(1, 8)]
        if [plain_task.retry.delay_before(n) for n in range(1, 8)] != delays:
            return f"{where}.retry.delay_before"
    return None


def judge(data: dict[str, Any]) -> str:
    """'same', 'left' (the check is unsure: the model holds it), 'model' (no plain form) or
    what differs."""
    checked = acceptance.checked(copy.deepcopy(data))
    if checked is None:
        return "left"
    plain_workflow = plain.plain_form(checked)
    if plain_workflow is None:
        return "model"
    model = Workflow.model_validate(copy.deepcopy(data))
    found = difference(plain_workflow, model, "workflow")
    if found is None:
        found = difference(pickle.loads(pickle.dumps(plain_workflow)), model, "unpickled")
    if found is None and plain_workflow.callback_ids() != model.callback_ids():
        found = "callback_ids"
    if found is None:
        found = cache_key_difference(plain_workflow, model)
    return "same" if found is None else f"DIFFERENT at {found} for {json.dumps(data)[:300]}"


def cache_key_difference(plain_workflow: Any, model: Workflow) -> str | None:
    """A task whose definition hash (its cache key's part) differs between the forms."""
    env = {"HOME": "/h", "API_URL": "http://127.0.0.1:1"}
    params = {"n": 1}
    for plain_task, model_task in zip(plain_workflow.tasks, model.tasks, strict=True):
        keys = [
            definition_hash(t, w.defaults, env, Path("/nowhere"), params)
            for t, w in ((plain_task, plain_workflow), (model_task, model))
        ]
        if keys[0] != keys[1]:
            return f"the definition hash of task {model_task.id}"
    return None


def test_every_fixture_workflow_reads_the_same_in_both_forms() -> None:
    verdicts = {name: judge(data) for name, data in fixture_data()}
    assert {v for v in verdicts.values() if v not in ("same", "model")} == set()
    assert list(verdicts.values()).count("same") >= 18


@pytest.mark.parametrize("seed", range(3))
def test_mutated_workflows_read_the_same_in_both_forms(seed: int) -> None:
    rng = random.Random(seed)
    workflows = fixture_data()
    verdicts = [judge(mutate(rng.choice(workflows)[1], rng)) for _ in range(1000)]
    assert [v for v in verdicts if v not in ("same", "left", "model")] == []
    assert verdicts.count("same") > 100


def test_a_workflow_with_every_field_the_engine_reads_reads_the_same() -> None:
    data = {
        "$schema": "x",
        "name": "full",
        "environment": {"A": "1"},
        "defaults": {"retry": {"attempts": 3, "delay": "2s", "backoff": "exponential"}},
        "trigger": {"type": "schedule", "config": {"schedule": "0 * * * *"}},
        "notifications": {"channels": ["console"], "on_completion": True},
        "alerts": [{"name": "a", "condition": "execution.status === 'failed'", "template": "t"}],
        "secrets": ["TOKEN"],
        "expected_duration": 5000,
        "tasks": [
            {"id": "a", "type": "shell", "command": "echo ${env.A}", "cache": True,
             "retry": {"attempts": 4, "delay": 10, "jitter": True, "max_delay": "1m"},
             "on_failure": {"type": "shell", "command": "echo inline", "retry": {"attempts": 2}},
             "on_success": ["b"], "parallel": False, "timeout": "5m", "resources": {"GPU": 1}},
            {"id": "b", "type": "shell", "command": "true", "depends_on": "a",
             "cache": {"inputs": ["data/*.csv"], "key": "${params.n}", "expire": "7d"}},
            {"id": "p", "type": "parallel", "wait_for": "any",
             "tasks": [{"command": "true"}, {"type": "http", "url": "http://127.0.0.1:1/"}]},
            {"id": "d", "type": "docker", "config": {"image": "busybox", "command": "true"}},
            {"id": "n", "type": "notebook", "notebook": "n.ipynb", "parameters": {"x": [1]}},
        ],
    }  # fmt: skip
    assert judge(data) == "same"


def test_every_built_in_class_has_a_plain_form() -> None:
    """``workflow run``'s start depends on it (bench/bench_cli.sh): a class without one (see
    the next test) makes its workflows run as the models, importing pydantic."""
    without = {name for name, node in plain._models().items() if node["behaviour"] is None}
    assert without == set()


def test_a_model_with_methods_or_serializers_of_its_own_has_no_plain_form() -> None:
    from pydantic import field_serializer

    from jupyter_workflows.definition.acceptance_build import _behaviour
    from jupyter_workflows.tasks.shell_model import ShellTask

    class WithMethod(ShellTask):
        def label(self) -> str:
            return self.command

    class WithSerializer(ShellTask):
        @field_serializer("command")
        def _command(self, value: str) -> str:
            return value.upper()

    assert _behaviour(ShellTask) == ["jupyter_workflows.definition.behaviour:TaskBehaviour"]
    assert _behaviour(WithMethod) is None
    assert _behaviour(WithSerializer) is None


@pytest.mark.parametrize(
    "text",
    [
        # a YAML date where anything goes: the model's JSON dump writes it as text
        "name: n\ntasks:\n  - {id: a, type: loop, items: [2024-01-01], then: {command: x}}\n",
        "name: n\ntasks:\n  - {id: a, type: notebook, notebook: n.ipynb, "
        "parameters: {day: 2024-01-01}}\n",
    ],
    ids=["date-in-loop-items", "date-in-parameters"],
)
def test_what_has_no_plain_form_runs_as_the_model(tmp_path: Path, text: str) -> None:
    path = tmp_path / "w.yaml"
    path.write_text(text)
    workflow = load_for_run(path)
    assert isinstance(workflow, Workflow)
    assert workflow == load_workflow(path)


def test_a_number_json_cannot_hold_has_no_plain_form() -> None:
    """Files cannot hold one (limits.py); data given in Python could."""
    task = {"id": "a", "type": "notebook", "notebook": "n.ipynb", "parameters": {"x": 1.5}}
    checked = acceptance.checked({"name": "n", "tasks": [task]})
    assert checked is not None and plain.plain_form(checked) is not None
    task["parameters"] = {"x": float("nan")}
    checked = acceptance.checked({"name": "n", "tasks": [task]})
    assert checked is not None and plain.plain_form(checked) is None


def test_a_file_the_check_is_sure_of_runs_in_its_plain_form(tmp_path: Path) -> None:
    path = tmp_path / "w.json"
    path.write_text(
        json.dumps({"name": "n", "tasks": [{"id": "a", "type": "shell", "command": "true"}]})
    )
    workflow = load_for_run(path)
    assert not isinstance(workflow, Workflow)
    assert isinstance(workflow, WorkflowBehaviour)
    assert isinstance(workflow.tasks[0], TaskBehaviour)
    assert workflow.model_dump() == load_workflow(path).model_dump()
    # a plain model equals only its own kind, and nothing is hashable, as with pydantic
    assert workflow.defaults != Defaults()
    with pytest.raises(TypeError):
        hash(workflow)


def test_load_for_run_reports_what_load_workflow_reports(tmp_path: Path) -> None:
    path = tmp_path / "w.json"
    path.write_text(json.dumps({"name": "n", "tasks": [{"id": "a", "type": "shell"}]}))
    with pytest.raises(Exception) as plain_error:
        load_for_run(path)
    with pytest.raises(Exception) as model_error:
        load_workflow(path)
    assert str(plain_error.value) == str(model_error.value)
    assert "command" in str(plain_error.value)


# Modules imported from a file (cli/common.py puts a stand-in for pydantic's plugin loader).
PROBE = """
import atexit, json, sys
atexit.register(lambda: print(json.dumps(sorted(
    m for m, module in sys.modules.items() if getattr(module, "__file__", None) and (
    m.split(".")[0] in ("pydantic", "pydantic_core")
    or m == "jupyter_workflows.definition.model"))), file=sys.stderr))
sys.argv = ["workflow", "run", sys.argv[1]]
from jupyter_workflows.cli import main
main()
"""


def test_workflow_run_of_shell_tasks_imports_no_pydantic(tmp_path: Path) -> None:
    """Retries, a cache, callbacks, secrets and the default alert rules included: the run is
    recorded, and nothing on its way needs the model."""
    path = tmp_path / "w.json"
    workflow = {
        "name": "plain",
        "secrets": ["TOKEN"],
        "tasks": [
            {"id": "a", "type": "shell", "command": "echo $TOKEN > a.txt", "cache": True,
             "retry": {"attempts": 2, "delay": "10ms"}, "on_success": "c"},
            {"id": "b", "type": "shell", "command": "test -s a.txt", "depends_on": ["a"],
             "timeout": 30},
            {"id": "c", "type": "shell", "command": "echo called > c.txt"},
        ],
    }  # fmt: skip
    path.write_text(json.dumps(workflow))
    env = {**os.environ, "TOKEN": "s3cret", "WORKFLOW_CACHE_DIR": ""}
    for _ in range(2):  # the second run reuses task a from the cache
        result = subprocess.run(
            [sys.executable, "-c", PROBE, str(path)],
            capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stderr.strip().splitlines()[-1]) == []
    assert (tmp_path / "c.txt").read_text() == "called\n"
    assert "a (cached" in result.stdout or "reused" in result.stdout, result.stdout


@pytest.fixture
def http_server() -> Iterator[str]:
    from pytest_httpserver import HTTPServer

    server = HTTPServer(host="127.0.0.1")
    server.expect_request("/ok").respond_with_data("fine")
    server.start()
    yield f"http://127.0.0.1:{server.port}"
    server.stop()


def test_workflow_run_of_every_light_task_type_imports_no_pydantic(
    tmp_path: Path, http_server: str
) -> None:
    """python, javascript, http, conditional, parallel and loop tasks: their models live apart
    from their types (``ModelAt``), so running them needs only the plain form. (docker,
    database, data_processor and notebook tasks do too, but their runners import heavier
    libraries; this keeps to what starts in a moment.)"""
    (tmp_path / "hello.js").write_text("console.log('js ok')\n")
    tasks: list[dict[str, Any]] = [
        {"id": "py", "type": "python", "code": "print(21 * 2)"},
        {"id": "web", "type": "http", "url": f"{http_server}/ok", "expected_status": 200},
        {"id": "pick", "type": "conditional", "condition": "${tasks.py.result} == 42",
         "then": {"command": "echo then"}, "else": {"command": "echo else"},
         "depends_on": ["py"]},
        {"id": "both", "type": "parallel", "tasks": [{"command": "true"}, {"command": "true"}]},
        {"id": "each", "type": "loop", "items": [1, 2, 3], "max_parallel": 2,
         "then": {"type": "python", "code": "import os; print(os.environ.get('X', ''))"}},
    ]  # fmt: skip
    if shutil.which("node"):
        tasks.append({"id": "js", "type": "javascript", "script": "hello.js"})
    path = tmp_path / "w.json"
    path.write_text(json.dumps({"name": "light", "tasks": tasks}))
    result = subprocess.run(
        [sys.executable, "-c", PROBE, str(path)],
        capture_output=True, text=True, cwd=tmp_path, timeout=120,
        env={**os.environ, "WORKFLOW_CACHE_DIR": ""},
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads(result.stderr.strip().splitlines()[-1]) == []
    assert "workflow 'light' succeeded" in result.stdout, result.stdout
    for line in ("✓ pick.then succeeded", "- pick.else skipped", "✓ each[2] succeeded", "✓ web"):
        assert line in result.stdout, result.stdout
