"""Original-format spellings: wrong ones are located errors, right ones become the native form."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from jupyter_workflows.definition.loader import validate_text
from jupyter_workflows.definition.model import json_schema

HEAD = "name: w\ntasks:\n"


def located(text: str) -> list[tuple[int | None, str | None, str | None, str]]:
    report = validate_text(text, source="w.yaml", fmt="yaml")
    return [(p.line, p.task_id, p.field, p.message) for p in report.errors]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            "  - {id: a, type: shell, command: x, on_success: [b, nope]}\n"
            "  - {id: b, type: shell, command: y}\n",
            (3, "a", "on_success[1]", "on_success names unknown task 'nope'"),
        ),
        (
            "  - {id: a, type: shell, command: x, on_failure: [b]}\n"
            "  - {id: b, type: shell, command: y}\n"
            "  - {id: c, type: shell, command: z, depends_on: [b]}\n",
            (5, "c", "depends_on[0]",
             "depends on 'b', which runs only as an on_success/on_failure callback"),
        ),
        (
            "  - id: l\n    type: loop\n    items: [1]\n"
            "    then: {type: shell, command: x}\n    task: {type: shell, command: y}\n",
            (3, "l", None, "set either 'then' or 'task' (its original spelling), not both"),
        ),
        (
            "  - {id: l, type: loop, items: [1]}\n",
            (3, "l", None, "missing the task to repeat: 'then' (or 'task')"),
        ),
        (
            "  - id: d\n    type: docker\n    tags: [a]\n    config: {dockerfile: D, tags: [b]}\n",
            (3, "d", None, "'tags' is set both here and in 'config'; keep one"),
        ),
        (
            "  - {id: d, type: docker, config: {dockerfile: D, tag: [b]}}\n",
            (3, "d", "config.tag", "unknown field 'tag'; did you mean 'tags'?"),
        ),
        (
            "  - {id: db, type: database, config: {connection: 'sqlite:///x.db'}}\n",
            (3, "db", "config", "a database task needs 'query', 'queries' (a transaction) or "
             "'migrations_path' (a migration)"),
        ),
        (
            "  - {id: h, type: http, url: 'http://h', data: {a: 1}, body: x}\n",
            (3, "h", None, "set either 'data' (the original's 'body') or 'body'"),
        ),
        (
            "  - {id: h, type: http, url: 'http://h', auth: {type: basic, username: u}}\n",
            (3, "h", "auth", "basic auth needs 'username' and 'password'"),
        ),
        (
            "  - id: p\n    type: parallel\n    wait_for: some\n"
            "    tasks: [{id: c, command: x}]\n",
            (5, "p", "wait_for", "expected 'all', 'any' or 'first', got 'some'"),
        ),
        (
            "  - id: p\n    type: parallel\n    tasks: [{id: c, command: 5}]\n",
            (5, "c", "command", "expected a valid string, got 5"),
        ),
    ],
)  # fmt: skip
def test_wrong_task_spellings_are_located(body: str, expected: tuple) -> None:
    assert expected in located(HEAD + body)


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (
            "name: w\nenvironment: {A: '1'}\ndefaults: {environment: {A: '2'}}\n",
            (2, None, "environment",
             "'A' is set both here and in defaults.environment, differently; keep one"),
        ),
        (
            "name: w\ntrigger: {type: schedule, config: {schedule: '61 * * * *'}}\n",
            (2, None, "trigger.config.schedule", None),
        ),
        (
            "name: w\nalerts:\n  - name: a\n    condition: execution.staus === 'failed'\n"
            "    template: x\n",
            (4, None, "alerts[0].condition",
             "invalid condition: unknown name 'execution.staus'; execution has id, status, "
             "state, duration, error, workflow at position 0"),
        ),
        (
            "name: w\nalerts:\n  - name: a\n    condition: 'metrics.successRate < 90'\n"
            "    template: 'rate ${metrics.rate}'\n    channels: [pager]\n",
            (5, None, "alerts[0].template",
             "invalid template: unknown name 'metrics.rate'; metrics has successRate, "
             "totalRuns, successfulRuns, failedRuns at position 5"),
        ),
    ],
)  # fmt: skip
def test_wrong_workflow_spellings_are_located(head: str, expected: tuple) -> None:
    problems = located(head + "tasks: [{id: a, type: shell, command: x}]\n")
    if expected[3] is None:  # the cron parser's own message
        assert [p[:3] for p in problems] == [expected[:3]]
    else:
        assert expected in problems


def test_an_unknown_alert_channel_is_located() -> None:
    text = (
        "name: w\nalerts:\n  - name: a\n    condition: 'true'\n    template: x\n"
        "    channels: [pager]\n"
        "tasks: [{id: a, type: shell, command: x}]\n"
    )
    ((line, _, field, message),) = located(text)
    assert (line, field) == (6, "alerts[0].channels[0]") and "pager" in message


def test_original_spellings_become_the_native_form() -> None:
    text = json.dumps({
        "name": "w",
        "environment": {"NODE_ENV": "production"},
        "expected_duration": 600000,
        "trigger": {"type": "schedule", "config": {"schedule": "0 2 * * *"}},
        "tasks": [
            {"id": "l", "type": "loop", "items": [1, 2, 3], "parallel": True,
             "task": {"command": "echo ${item}"}},
            {"id": "d", "type": "docker", "config": {"dockerfile": "D", "tags": ["t"]}},
            {"id": "db", "type": "database",
             "config": {"connection": "sqlite:///x.db", "migrations_path": "m/"}},
            {"id": "h", "type": "http", "url": "http://h", "timeout": 10000, "data": {"a": 1}},
        ],
    })  # fmt: skip
    report = validate_text(text, fmt="json")
    workflow = report.workflow
    assert workflow is not None, report.problems
    assert workflow.defaults.environment == {"NODE_ENV": "production"}
    assert workflow.expected_duration == 600.0 and workflow.trigger.type == "cron"
    loop, docker, database, http = workflow.tasks
    assert loop.then.type == "shell" and loop.task is None and loop.max_parallel == 3
    assert (docker.dockerfile, docker.tags, docker.config) == ("D", ["t"], None)
    assert database.config.operation == "migration"
    assert (http.timeout, http.body, http.data) == (10.0, {"a": 1}, None)


def test_the_json_schema_shows_the_original_spellings() -> None:
    schema = json_schema()
    text = json.dumps(schema)
    top = schema["properties"]
    assert {"environment", "alerts", "expected_duration"} <= set(top)
    defs = schema["$defs"]
    assert {"on_success", "on_failure", "parallel"} <= set(defs["ShellTask"]["properties"])
    assert {"task", "parallel", "then"} <= set(defs["LoopTask"]["properties"])
    assert "config" in defs["DockerTask"]["properties"]
    assert {"data", "auth"} <= set(defs["HttpTask"]["properties"])
    assert "first" in defs["ParallelTask"]["properties"]["wait_for"]["enum"]
    assert '"schedule"' in text and "AlertRule" in defs


def test_the_original_fixtures_are_valid_as_read(tmp_path: Path) -> None:
    from jupyter_workflows.definition.loader import validate_file

    fixtures = Path(__file__).resolve().parents[1] / "fixtures" / "original"
    for path in sorted(fixtures.glob("*.*")):
        report = validate_file(path)
        assert report.ok, (path.name, [str(p) for p in report.problems])
