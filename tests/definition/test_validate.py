"""What validation reports: model errors made actionable, graph, expressions, warnings, cron."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from jupyter_workflows.definition.loader import ValidationReport, validate_file
from jupyter_workflows.errors import Problem


def check(tmp_path: Path, text: str, name: str = "wf.yaml") -> ValidationReport:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return validate_file(path)


def located(report: ValidationReport) -> list[tuple[object, ...]]:
    """(line, task id, field, message) of each problem, in report order."""
    return [(p.line, p.task_id, p.field, p.message) for p in report.problems]


def tasks(body: str) -> str:
    """A workflow whose task list is ``body`` (YAML); the first task is on line 3."""
    return "name: demo\ntasks:\n" + textwrap.indent(textwrap.dedent(body).lstrip("\n"), "  ")


# --- rule 4: pydantic's errors, translated


def test_unknown_task_type_lists_the_types_and_suggests_one(tmp_path: Path) -> None:
    report = check(tmp_path, tasks("- id: a\n  type: pyhton\n  script: x.py\n"))
    assert located(report) == [
        (4, "a", "type", "unknown task type 'pyhton'; expected one of shell, python, javascript, "
         "http, docker, data_processor, database, conditional, parallel, loop, notebook; "
         "did you mean 'python'?"),
    ]  # fmt: skip


def test_missing_type(tmp_path: Path) -> None:
    report = check(tmp_path, tasks("- id: a\n  command: x\n"))
    assert located(report)[0][:3] == (3, "a", "type")
    assert report.problems[0].message.startswith("missing 'type'; expected one of shell, python")


def test_unknown_field_suggests_the_model_field(tmp_path: Path) -> None:
    report = check(tmp_path, tasks("- id: a\n  type: shell\n  command: x\n  dependson: [b]\n"))
    assert located(report) == [
        (6, "a", "dependson", "unknown field 'dependson'; did you mean 'depends_on'?")
    ]
    report = check(tmp_path, "nmae: x\ntasks: [{id: a, type: shell, command: x}]\n")
    assert [p.message for p in report.problems] == [
        "missing required field 'name'",
        "unknown field 'nmae'; did you mean 'name'?",
    ]


def test_missing_required_field_points_at_the_task(tmp_path: Path) -> None:
    report = check(tmp_path, tasks("- id: a\n  type: shell\n  name: A\n"))
    assert located(report) == [(3, "a", "command", "missing required field 'command'")]


def test_value_errors_keep_their_message_without_the_prefix(tmp_path: Path) -> None:
    report = check(tmp_path, tasks("- id: a\n  type: shell\n  command: x\n  timeout: soon\n"))
    (problem,) = report.problems
    assert (problem.line, problem.field) == (6, "timeout")
    assert problem.message.startswith("'soon' is not a duration: write a number (seconds)")
    assert "Value error" not in problem.message and "http" not in problem.message


def test_errors_in_nested_children_name_the_task_and_the_path(tmp_path: Path) -> None:
    report = check(
        tmp_path,
        tasks("""
        - id: deploy
          type: conditional
          condition: "true"
          then:
            type: shell
            comand: x
        - id: tests
          type: parallel
          tasks:
            - id: unit
              type: shell
              command: 5
            - type: shell
        """),
    )
    assert located(report) == [
        (6, "deploy", "then.command", "missing required field 'command'"),
        (8, "deploy", "then.comand", "unknown field 'comand'; did you mean 'command'?"),
        (14, "unit", "command", "expected a valid string, got 5"),
        (15, "tests", "tasks[1].command", "missing required field 'command'"),
    ]


def test_union_mismatches_become_one_problem(tmp_path: Path) -> None:
    report = check(tmp_path, tasks("- {id: a, type: shell, command: x, on_failure: 5}\n"))
    assert [p.message for p in report.problems] == [
        "expected a valid string or a valid list or a task (a mapping with 'type' and its "
        "fields), got 5"
    ]
    report = check(
        tmp_path, tasks("- {id: a, type: shell, command: x, on_failure: {type: shel}}\n")
    )
    assert report.problems[0].field == "on_failure.type"
    assert report.problems[0].message.startswith("unknown task type 'shel'")


def test_invalid_task_id(tmp_path: Path) -> None:
    report = check(tmp_path, tasks("- {id: 'build app', type: shell, command: x}\n"))
    assert located(report) == [
        (3, "build app", "id", "invalid task id 'build app'; use only letters, digits, '-' and '_'")
    ]


def test_messages_never_carry_pydantic_urls(tmp_path: Path) -> None:
    report = check(tmp_path, "name: ''\ntrigger: {type: cronn}\ntasks: [{id: a}, 3]\n")
    assert report.problems and not any("pydantic" in str(p) for p in report.problems)
    assert located(report)[:2] == [
        (1, None, "name", "must not be empty"),
        (2, None, "trigger.type", "unknown trigger type 'cronn'; expected one of manual, cron, "
         "schedule, webhook, file_change; did you mean 'cron'?"),
    ]  # fmt: skip


# --- rule 5: the graph, checked on the raw data


def test_graph_problems_are_reported_even_when_the_model_fails(tmp_path: Path) -> None:
    report = check(
        tmp_path,
        tasks("""
        - {id: a, type: shel, command: x, depends_on: [bulid]}
        - {type: shell, command: x}
        - {id: build, type: shell, command: x, depends_on: build}
        - {id: b, type: parallel, tasks: [{id: a, type: shell, command: x}]}
        - {id: c, type: shell, command: x, depends_on: [a], on_failure: cleanpu}
        - {id: cleanup, type: shell, command: x}
        """),
    )
    assert located(report) == [
        (3, "a", "type", report.problems[0].message),
        (3, "a", "depends_on[0]", "depends on unknown task 'bulid'; did you mean 'build'?"),
        (4, None, "tasks[1]", "missing 'id': every top-level task needs one"),
        (5, "build", "depends_on", "task 'build' depends on itself"),
        (6, "a", "id", "duplicate task id 'a' (first used at line 3)"),
        (7, "c", "on_failure", "on_failure names unknown task 'cleanpu'; did you mean 'cleanup'?"),
    ]


def test_depending_on_a_nested_task_names_its_parent(tmp_path: Path) -> None:
    report = check(
        tmp_path,
        tasks("""
        - {id: p, type: parallel, tasks: [{id: unit, type: shell, command: x}]}
        - {id: q, type: shell, command: x, depends_on: [unit]}
        """),
    )
    assert located(report) == [
        (
            4,
            "q",
            "depends_on[0]",
            "depends on 'unit', a task nested inside 'p'; depend on 'p' instead",
        )
    ]


def test_each_cycle_is_reported_once_with_its_path(tmp_path: Path) -> None:
    report = check(
        tmp_path,
        tasks("""
        - {id: a, type: shell, command: x, depends_on: [c]}
        - {id: b, type: shell, command: x, depends_on: [a]}
        - {id: c, type: shell, command: x, depends_on: [b, d]}
        - {id: d, type: shell, command: x, depends_on: [c]}
        - {id: e, type: shell, command: x, depends_on: [a]}
        """),
    )
    assert located(report) == [
        (3, "a", "depends_on", "dependency cycle: a -> c -> b -> a"),
        (5, "c", "depends_on", "dependency cycle: c -> d -> c"),
    ]


# --- rule 6: expressions


def test_unparsable_expression_anywhere_in_a_task_is_located(tmp_path: Path) -> None:
    report = check(
        tmp_path,
        tasks("""
        - id: call
          type: http
          url: http://h/${env.HOST
          environment:
            TOKEN: ${tasks.x}
          condition: ${env.A} === 'b'
        """),
    )
    fields = [(p.line, p.task_id, p.field) for p in report.problems]
    assert fields == [
        (5, "call", "url"),
        (7, "call", "environment.TOKEN"),
        (8, "call", "condition"),
    ]
    assert report.problems[0].message.startswith("invalid expression: unclosed '${'")
    assert report.problems[1].message.startswith("invalid expression: missing field after task id")
    assert report.problems[2].message.startswith("invalid condition: ")


def test_references_must_point_upstream(tmp_path: Path) -> None:
    report = check(
        tmp_path,
        tasks("""
        - {id: health-check, type: http, url: "http://h"}
        - {id: build, type: shell, command: "make ${tasks.health-check.result}",
           depends_on: [health-check]}
        - {id: deploy, type: shell, command: "echo ${tasks.health-check.exit_code}",
           depends_on: build}
        - {id: report, type: shell, command: "echo ${tasks.deploy.result} ${tasks.nope.result}"}
        - {id: self, type: shell, command: "echo ${tasks.self.result}"}
        """),
    )
    assert located(report) == [
        (8, "report", "command",
         "refers to task 'deploy', which is not upstream of 'report' (add it to depends_on)"),
        (8, "report", "command", "refers to unknown task 'nope'"),
        (9, "self", "command",
         "refers to task 'self' itself, which has no result while it runs"),
    ]  # fmt: skip


def test_nested_children_and_failure_handlers_see_what_ran_before(tmp_path: Path) -> None:
    report = check(
        tmp_path,
        tasks("""
        - id: list
          type: shell
          command: ls
        - id: work
          type: parallel
          depends_on: [list]
          on_failure: {type: shell, command: "echo ${tasks.work.error} ${tasks.one.result}"}
          tasks:
            - {id: one, type: shell, command: "echo ${tasks.list.result}"}
            - {id: two, type: shell, command: "echo ${tasks.one.result}"}
        - id: after
          type: loop
          depends_on: [work]
          items: ${tasks.list.result}
          then: {type: shell, command: "echo ${item} ${tasks.two.exit_code}"}
        - id: rescue
          type: shell
          command: "echo ${tasks.cleanup.exit_code} ${tasks.list.result}"
        - id: cleanup
          type: shell
          command: rm -rf tmp
          depends_on: [list]
          on_failure: rescue
        - id: stray
          type: shell
          command: "echo ${tasks.two.result}"
        """),
    )
    assert located(report) == [
        (28, "stray", "command", "refers to task 'two' (nested inside 'work'), which is not "
         "upstream of 'stray' (add 'work' to depends_on)"),
    ]  # fmt: skip


# --- rule 7: warnings


def test_unit_warnings_do_not_fail_validation(tmp_path: Path) -> None:
    report = check(
        tmp_path,
        """
        {
          "name": "units",
          "defaults": {"retry": {"attempts": 3, "delay": 2}},
          "tasks": [
            {"id": "ping", "type": "http", "url": "http://h", "timeout": 10,
             "retry": {"attempts": 1}},
            {"id": "fast", "type": "http", "url": "http://h", "timeout": 1000,
             "retry": {"delay": 50}}
          ]
        }
        """,
        name="wf.json",
    )
    assert report.ok and report.workflow is not None and report.errors == []
    assert located(report) == [
        (3, None, "defaults.retry.delay", "retry delay 2 looks like seconds; a bare number is "
         'milliseconds, write "2s" or 2000'),
        (5, "ping", "timeout", "timeout 10 looks like seconds; an http task's timeout number is "
         'milliseconds (as in the original format), write "10s" or 10000'),
        (6, "ping", "retry.attempts", "retry with attempts 1 never retries (attempts counts the "
         "first try too)"),
        (8, "fast", "retry", "retry without 'attempts' makes a single attempt; set attempts to 2 "
         "or more"),
    ]  # fmt: skip
    assert {p.severity for p in report.problems} == {"warning"}


def test_cache_on_a_nested_task_is_a_warning_and_bad_cache_inputs_an_error(
    tmp_path: Path,
) -> None:
    report = check(
        tmp_path,
        """
        {
          "name": "cached",
          "tasks": [
            {"id": "group", "type": "parallel", "cache": true, "tasks": [
              {"id": "inner", "type": "shell", "command": "true", "cache": {"inputs": ["a/*"]}}
            ]}
          ]
        }
        """,
        name="wf.json",
    )
    assert report.ok and located(report) == [
        (5, "inner", "cache", "cache applies to top-level tasks only: this nested task "
         "runs whenever its parent does (give the parent cache: instead)"),
    ]  # fmt: skip
    assert report.problems[0].severity == "warning"
    bad = check(
        tmp_path,
        '{"name": "c", "tasks": [{"id": "t", "type": "shell", "command": "x",'
        ' "cache": {"inputs": ["../secrets/*"], "expire": "soon"}}]}',
        name="bad.json",
    )
    assert not bad.ok
    messages = " | ".join(p.message for p in bad.errors)
    assert "must be a glob relative to the project root" in messages
    assert "is not a duration" in messages


def test_parallel_false_on_a_nested_task_is_a_warning_not_a_silent_no_op(tmp_path: Path) -> None:
    """Only top-level tasks are kept apart by ``parallel: false``; on a nested one it did
    nothing, and said nothing. A loop's own ``parallel`` (its iterations) is not warned about."""
    report = check(
        tmp_path,
        """
        {
          "name": "apart",
          "tasks": [
            {"id": "group", "type": "parallel", "tasks": [
              {"id": "inner", "type": "shell", "command": "true", "parallel": false},
              {"id": "each", "type": "loop", "items": [1, 2], "parallel": false,
               "then": {"type": "shell", "command": "echo ${item}"}}
            ]},
            {"id": "alone", "type": "shell", "command": "true", "parallel": false}
          ]
        }
        """,
        name="wf.json",
    )
    assert report.ok and located(report) == [
        (5, "inner", "parallel", "parallel: false applies to top-level tasks only: this nested "
         "task runs as its parent schedules it (give the parent parallel: false instead)"),
    ]  # fmt: skip
    assert report.problems[0].severity == "warning"


# --- rule 8: cron schedules and their time zones (croniter, five fields)


CRON = """
name: c
trigger:
  type: cron
  config:
    schedule: '{schedule}'
    timezone: {zone}
tasks: [{{id: a, type: shell, command: x}}]
"""
CRON_EXPECTED = "expected 'minute hour day-of-month month day-of-week', e.g. \"0 */6 * * *\""


@pytest.mark.parametrize("schedule", ["0 */6 * * *", "*/15 9-17 * * 1-5", "@daily", "@HOURLY"])
def test_valid_cron_schedules_pass(tmp_path: Path, schedule: str) -> None:
    assert check(tmp_path, CRON.format(schedule=schedule, zone="Europe/Zurich")).ok


@pytest.mark.parametrize(
    ("schedule", "why"),
    [
        ("61 * * * *", "[61 * * * *] is not acceptable, out of range; "),
        ("0 0 30 2 *", "it never matches a date; "),  # what the scheduler would refuse too
        ("0 0 * *", ""), ("0 0 0 * * * *", ""), ("*/5 0 0 * * *", ""), ("every day", ""),
        ("@fortnightly", ""),
    ],
)  # fmt: skip
def test_bad_cron_schedules_are_located(tmp_path: Path, schedule: str, why: str) -> None:
    report = check(tmp_path, CRON.format(schedule=schedule, zone="UTC"))
    assert report.problems == [
        Problem(f"invalid cron schedule '{schedule}': {why}{CRON_EXPECTED}",
                file=str(tmp_path / "wf.yaml"), line=5, column=5, field="trigger.config.schedule")
    ]  # fmt: skip


def test_an_unknown_time_zone_is_located(tmp_path: Path) -> None:
    report = check(tmp_path, CRON.format(schedule="0 2 * * *", zone="Europe/Zurichh"))
    assert report.problems == [
        Problem("unknown time zone 'Europe/Zurichh': expected an IANA name like Europe/Zurich",
                file=str(tmp_path / "wf.yaml"), line=6, column=5, field="trigger.config.timezone")
    ]  # fmt: skip


def test_yaml_boolean_keys_and_nested_handlers_are_explained(tmp_path: Path) -> None:
    report = check(
        tmp_path,
        tasks("""
        - {id: a, type: shell, command: x, on: push}
        - {id: p, type: parallel, tasks: [{id: inner, type: shell, command: x}]}
        - {id: b, type: shell, command: x, on_failure: inner}
        """),
    )
    assert located(report) == [
        (3, "a", None, "field names must be text, got true"),
        (5, "b", "on_failure",
         "on_failure names 'inner', a task nested inside 'p'; a callback must be a top-level task"),
    ]  # fmt: skip


@pytest.mark.parametrize("pattern", ["../src/*.ts", "/etc/*", "src/../../x"])
def test_file_change_patterns_stay_inside_the_project(tmp_path: Path, pattern: str) -> None:
    text = (
        "name: w\ntrigger:\n  type: file_change\n  config:\n"
        f"    files: ['ok/*.py', '{pattern}']\ntasks: [{{id: a, type: shell, command: x}}]\n"
    )
    (problem,) = check(tmp_path, text).problems
    assert problem.field == "trigger.config.files"
    assert f"pattern '{pattern}' must be a glob relative to the project root" in problem.message


def test_unknown_alert_channel_is_a_located_error(tmp_path: Path) -> None:
    report = check(
        tmp_path,
        tasks("- id: a\n  type: shell\n  command: x\n")
        + "notifications:\n  channels: [console, teams]\n",
    )
    [problem] = report.problems
    assert (problem.line, problem.field) == (7, "notifications.channels[1]")
    assert problem.message.startswith("unknown alert channel 'teams'; expected one of console")
    assert "slack" in problem.message


def test_webhook_signature_settings_are_checked(tmp_path: Path) -> None:
    def problems(config: str) -> list[tuple[object, ...]]:
        text = (
            f"name: demo\ntrigger:\n  type: webhook\n  config: {config}\n"
            + tasks("- {id: a, type: shell, command: x}\n").split("\n", 1)[1]
        )
        return [(p.field, p.message) for p in check(tmp_path, text).problems]

    assert problems("{webhook: /x, signature: slack, tolerance: 2m, replay_window: 1h}") == []
    assert problems("{webhook: /x, signature: gitlab}") == [
        ("trigger.config.signature", "expected 'github', 'stripe' or 'slack', got 'gitlab'")
    ]
    assert problems("{webhook: /x, replay_window: 0}") == [
        ("trigger.config.replay_window", "expected greater than 0, got 0")
    ]
    assert problems("{webhook: /x, tolerance: 10}") == [
        ("trigger.config", "'tolerance' applies to timestamped signatures (signature: stripe or "
         "slack); github signatures carry no time"),
    ]  # fmt: skip


# --- secrets on a command line


def test_a_secret_on_a_command_line_is_flagged(tmp_path: Path) -> None:
    report = check(
        tmp_path,
        tasks(
            """
            - id: sh
              type: shell
              command: 'curl -H "Authorization: Bearer ${secret.API_TOKEN}" https://x'
            - id: py
              type: python
              script: job.py
              args: ["--user", "me", "--password=${secret.db-pass}"]
            - id: ok
              type: shell
              command: 'curl -H "Authorization: Bearer $API_TOKEN" https://x'
              environment: {API_TOKEN: "${secret.API_TOKEN}"}
            """
        ),
    )
    assert report.ok  # a warning: it runs, but `ps` shows the value
    assert [(p.severity, p.task_id, p.field) for p in report.problems] == [
        ("warning", "sh", "command"),
        ("warning", "py", "args[2]"),
    ]
    assert report.problems[0].message == (
        "${secret.API_TOKEN} in 'command' is put on the command line, where `ps` shows it to "
        "every user of this machine: pass it through the environment instead (environment: "
        '{API_TOKEN: "${secret.API_TOKEN}"}, then use $API_TOKEN in the command, os.environ in '
        "Python, process.env in JavaScript)"
    )
    assert '{DB_PASS: "${secret.db-pass}"}' in report.problems[1].message
