"""Hostile workflow files and an engine that trusts nothing.

Every probe of issue 13 is reproduced here, then ~300 generated hostile files go through the
real ``workflow validate`` (batched, many files per process) and through ``validate_file`` in
this process: no traceback, every error located where a location exists, the documented exit
codes, and each file checked in well under a second. Times are CPU seconds of this process
(``time.process_time``): the machine running the suite is shared, and what a hostile file
must not do is make us *work* for long; wall time is printed for the report.
"""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml

from jupyter_workflows.definition import limits
from jupyter_workflows.definition.conditions import parse_condition
from jupyter_workflows.definition.loader import (
    ValidationReport,
    load_workflow,
    validate_file,
    validate_text,
)
from jupyter_workflows.definition.model import Retry, Workflow
from jupyter_workflows.definition.templates import Scope
from jupyter_workflows.engine import WorkflowOrchestrator
from jupyter_workflows.errors import ExpressionError, ValidationError
from tests.adversarial.hostile_files import (
    ANY,
    BOMB,
    INVALID,
    MARKER_NAME,
    UNREADABLE,
    VALID,
    Case,
    generate,
    iter_batches,
)
from tests.conftest import cli


@contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Turn a hang into a failure: SIGALRM raises TimeoutError in this (the main) thread."""

    def expire(signum: int, frame: Any) -> None:
        raise TimeoutError(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    except TimeoutError as exc:  # raised wherever the code was stuck: report it plainly
        pytest.fail(str(exc), pytrace=False)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def timed(func: Any, *args: Any, **kwargs: Any) -> tuple[Any, float, float]:
    """(result, cpu seconds, wall seconds) of one call, under a 30 s deadline."""
    with deadline(30):
        cpu, wall = time.process_time(), time.perf_counter()
        result = func(*args, **kwargs)
        return result, time.process_time() - cpu, time.perf_counter() - wall


SHELL = "name: x\ntasks:\n  - id: a\n    type: shell\n    command: echo\n"  # task on line 3

# name, text, format, line of the first error, a fragment of its message
PROBES: list[tuple[str, str, str, int | None, str]] = [
    ("yaml-alias-bomb", BOMB, "yaml", 6, "aliases"),
    ("yaml-self-alias", SHELL + "    environment: &a [*a]\n", "yaml", 6, "its own anchor"),
    ("yaml-self-alias-map", SHELL + "    retry: &r {attempts: *r}\n", "yaml", 6, "its own anchor"),
    ("yaml-huge-int", SHELL + "    timeout: 1" + "0" * 400 + "\n", "yaml", 6, "number"),
    (
        "json-huge-int",
        '{"name": "x",\n "tasks": [{"id": "a", "type": "shell", "command": "x",\n'
        '  "timeout": 1' + "0" * 400 + "}]}",
        "json",
        3,
        "number",
    ),
    ("yaml-5000-digits", SHELL + "    timeout: " + "9" * 5000 + "\n", "yaml", 6, "number"),
    (
        "json-5000-digits",
        '{"name": "x", "tasks": [{"id": "a", "type": "shell", "command": "x",'
        ' "timeout": ' + "9" * 5000 + "}]}",
        "json",
        1,
        "number",
    ),
    (
        "json-float-overflow",
        '{"name": "x", "tasks": [{"id": "a", "type": "shell", "command": '
        '"x",\n "timeout": 1e999}]}',
        "json",
        2,
        "number",
    ),
    (
        "json-nested-1000",
        '{"name": "x",\n "tasks": ' + "[" * 1000 + "]" * 1000 + "}",
        "json",
        2,
        "deep",
    ),
    ("yaml-nested-1000", "name: x\ntasks: " + "[" * 1000 + "]" * 1000 + "\n", "yaml", 2, "deep"),
    (
        "condition-parens-300",
        SHELL + '    condition: "' + "(" * 300 + "true" + ")" * 300 + '"\n',
        "yaml",
        6,
        "nested",
    ),
    ("condition-not-300", SHELL + '    condition: "' + "!" * 300 + 'true"\n', "yaml", 6, "nested"),
    ("nul-in-yaml", "name: x\ntasks:\n  - id: a\n    type: sh\x00ell\n", "yaml", 4, "NUL"),
    ("nul-in-json", '{"name": "x",\n "tasks": [\x00]}', "json", 2, "NUL"),
    (
        "nul-escape-json",
        '{"name": "x",\n "tasks": [{"id": "a", "type": "shell", "command": "a\\u0000b"}]}',
        "json",
        2,
        "NUL",
    ),
    ("duration-nan", SHELL + "    timeout: nan\n", "yaml", 6, "finite"),
    ("duration-overflow", SHELL + "    timeout: '" + "9" * 400 + "s'\n", "yaml", 6, "finite"),
]


@pytest.mark.parametrize(
    ("name", "text", "fmt", "line", "fragment"), PROBES, ids=[p[0] for p in PROBES]
)
def test_each_probe_is_one_located_error_in_well_under_a_second(
    name: str, text: str, fmt: str, line: int, fragment: str
) -> None:
    report, cpu, _ = timed(validate_text, text, fmt=fmt, source="probe")
    assert not report.ok
    first = report.errors[0]
    assert (first.file, first.line) == ("probe", line), first
    assert fragment in first.message, first
    assert cpu < 1.0


def test_undecodable_bytes_and_nul_bytes_in_a_file_have_their_line(tmp_path: Path) -> None:
    latin = tmp_path / "latin.yaml"
    latin.write_bytes("name: x\ntasks:\n  - id: caf\xe9\n".encode("latin-1"))
    (problem,) = validate_file(latin).problems
    assert (problem.line, problem.column) == (3, 12)
    assert problem.message.startswith("not UTF-8 text: byte 0xe9")
    nul = tmp_path / "nul.json"
    nul.write_bytes(b'{"name": "x",\n "tasks": [\n  \x00]}')
    (problem,) = validate_file(nul).problems
    assert (problem.line, problem.column) == (3, 3)
    assert "NUL" in problem.message


def test_a_yaml_tag_never_constructs_an_object(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    text = f"name: !!python/object/apply:os.system ['touch {marker}']\ntasks: []\n"
    report = validate_text(text, fmt="yaml")
    (problem,) = report.errors
    assert problem.line == 1 and "tag" in problem.message
    assert not marker.exists()


def test_a_file_larger_than_the_limit_is_refused_without_reading_it_all(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_text("# " + "x" * limits.MAX_FILE_BYTES + "\nname: x\n")
    report, cpu, _ = timed(validate_file, path)
    (problem,) = report.problems
    assert problem.file == str(path) and "larger than" in problem.message
    assert cpu < 0.5


def test_python_api_data_is_bounded_too(tmp_path: Path) -> None:
    """``load_workflow(dict)`` skips the parser, not the limits."""
    cyclic: dict[str, Any] = {"id": "a", "type": "shell", "command": "x"}
    cyclic["environment"] = cyclic
    huge = {"id": "b", "type": "shell", "command": "x", "timeout": 10**400}
    for task, field in ((cyclic, "environment"), (huge, "timeout")):
        with deadline(10), pytest.raises(ValidationError) as caught:
            load_workflow({"name": "x", "tasks": [task]})
        (problem,) = caught.value.problems
        assert (problem.task_id, problem.field) == (task["id"], field), problem
    with pytest.raises(Exception) as raised:  # the model itself: an error, not an overflow
        Workflow.model_validate({"name": "x", "tasks": [huge]})
    assert "OverflowError" not in repr(raised.value)
    assert "finite" in str(raised.value)


def test_retry_delays_never_overflow() -> None:
    retry = Retry(attempts=10_000, delay=1_000, backoff=1e300, max_delay=5_000)
    assert retry.delay_before(9_999) == 5.0


def test_conditions_nest_at_most_so_deep_and_long_chains_evaluate() -> None:
    depth = limits.MAX_CONDITION_DEPTH
    assert parse_condition("(" * depth + "true" + ")" * depth).evaluate(Scope(env={}))
    with pytest.raises(ExpressionError, match="nested deeper than"):
        parse_condition("!" * (depth + 1) + "true")
    for text in (" && ".join(["true"] * 5000), " || ".join(["false"] * 5000) + " || true"):
        assert parse_condition(text).evaluate(Scope(env={}))


# --- the generated corpus


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> list[Case]:
    cases = generate(tmp_path_factory.mktemp("hostile"))
    assert len(cases) >= 300
    return cases


def unsafe(char: str) -> bool:
    """A character that changes what a terminal shows: controls, invisible and bidi marks."""
    code = ord(char)
    return (
        code < 32
        or 0x7F <= code < 0xA0
        or 0x200B <= code <= 0x200F
        or 0x2028 <= code <= 0x202E
        or 0x2066 <= code <= 0x2069
        or code in (0x061C, 0xFEFF)
    )


def check_report(case: Case, report: dict[str, Any]) -> list[str]:
    """What is wrong with the report of ``case`` (a ``to_dict()``), as readable lines."""
    wrong = []
    name = case.path.name
    if case.expect == VALID and not report["ok"]:
        wrong.append(f"{name}: expected valid, got {report['problems'][:2]}")
    if case.expect in (INVALID, UNREADABLE) and report["ok"]:
        wrong.append(f"{name}: expected {case.expect}, got ok")
    if report["unreadable"] != (case.expect == UNREADABLE):
        wrong.append(f"{name}: unreadable is {report['unreadable']}, expected {case.expect}")
    for problem in report["problems"]:
        if problem["file"] != str(case.path):
            wrong.append(f"{name}: problem without its file: {problem}")
        needs_line = case.located and case.expect != UNREADABLE
        if problem["severity"] == "error" and needs_line and problem["line"] is None:
            wrong.append(f"{name}: error without a line: {problem}")
        if len(problem["message"]) > 600:
            wrong.append(f"{name}: message of {len(problem['message'])} characters")
        shown = problem["message"] + (problem["task_id"] or "") + (problem["field"] or "")
        if any(unsafe(c) for c in shown):
            wrong.append(f"{name}: control or format character in {shown!r}")
    if case.contains and not any(case.contains in p["message"] for p in report["problems"]):
        wrong.append(f"{name}: no message contains {case.contains!r}: {report['problems'][:2]}")
    return wrong


def test_generated_hostile_files_in_process(corpus: list[Case]) -> None:
    wrong, times = [], []
    for case in corpus:
        report, cpu, wall = timed(validate_file, case.path)
        assert isinstance(report, ValidationReport)
        times.append((cpu, wall, case.path.name))
        wrong += check_report(case, report.to_dict())
    worst = max(times)
    print(
        f"\n{len(corpus)} hostile files: worst {worst[0]:.3f} s CPU ({worst[1]:.3f} s wall) "
        f"for {worst[2]}; slowest by wall {max(times, key=lambda t: t[1])}"
    )
    assert not wrong, "\n".join(wrong)
    assert [t for t in times if t[0] >= 1.0] == []
    assert not (corpus[0].path.parent / MARKER_NAME).exists()


def run_validate(root: Path, cases: list[Case]) -> tuple[int, list[dict[str, Any]], str]:
    result = cli(root, "validate", "--json", *(str(c.path) for c in cases), timeout=300)
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    return result.returncode, json.loads(result.stdout), result.stderr


def test_generated_hostile_files_through_the_real_command(
    corpus: list[Case], project: Path
) -> None:
    wrong: list[str] = []
    for batch in iter_batches([c for c in corpus if c.expect != UNREADABLE], 100):
        code, reports, _ = run_validate(project, batch)
        assert code == 1  # every batch holds invalid files and no unreadable one
        assert [r["source"] for r in reports] == [str(c.path) for c in batch]
        for case, report in zip(batch, reports, strict=True):
            wrong += check_report(case, report)
    unreadable = [c for c in corpus if c.expect == UNREADABLE]
    code, reports, _ = run_validate(project, unreadable)
    assert code == 2
    for case, report in zip(unreadable, reports, strict=True):
        wrong += check_report(case, report)
    assert not wrong, "\n".join(wrong)
    assert not (corpus[0].path.parent / MARKER_NAME).exists()


def test_validate_exit_codes_and_plain_output(corpus: list[Case], project: Path) -> None:
    """0 all valid, 1 some file invalid, 2 some file unreadable (even beside invalid ones)."""
    valid = [c for c in corpus if c.expect == VALID][:3]
    invalid = [c for c in corpus if c.expect == INVALID][:3]
    unreadable = [c for c in corpus if c.expect == UNREADABLE][:2]
    for cases, expected in ((valid, 0), (invalid, 1), (unreadable, 2), (invalid + unreadable, 2)):
        result = cli(project, "validate", *(str(c.path) for c in cases))
        assert result.returncode == expected, (cases, result.stderr)
        assert "Traceback" not in result.stderr
    hostile = [c for c in corpus if c.expect in (INVALID, ANY)]
    result = cli(project, "validate", *(str(c.path) for c in hostile), timeout=300)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "\x1b" not in result.stderr + result.stdout  # no terminal escapes from the files
    assert max(map(len, result.stderr.splitlines())) < 800


# --- 10,000 errors


@pytest.mark.parametrize("fmt", ["json", "yaml"])
def test_ten_thousand_errors_in_under_two_seconds(fmt: str) -> None:
    """Under 2 s of CPU here (about 0.9 s), and on a slower or busier machine (CI measured
    2.00 s once) no more than 1.5x what merely loading the same workflow as YAML with
    libyaml costs there: the unit of this machine's speed, measured alongside."""
    tasks = [
        {"id": f"task-{i}", "type": "shell", "command": "echo", "depends_on": [f"gone-{i}"]}
        for i in range(10_000)
    ]
    data = {"name": "x", "tasks": tasks}
    yaml_text = "name: x\ntasks:\n" + "".join(
        f"  - id: task-{i}\n    type: shell\n    command: echo\n    depends_on: [gone-{i}]\n"
        for i in range(10_000)
    )
    text = json.dumps(data, indent=1) if fmt == "json" else yaml_text
    report, cpu, wall = timed(validate_text, text, fmt=fmt)
    _, unit, _ = timed(yaml.load, yaml_text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    print(f"\n10,000 errors ({fmt}): {cpu:.2f} s CPU, {wall:.2f} s wall; yaml.load {unit:.2f} s")
    assert len(report.errors) == 10_000
    assert all(p.line is not None and p.task_id for p in report.errors)
    last = report.errors[-1]
    assert (last.task_id, last.field) == ("task-9999", "depends_on[0]")
    assert last.message == "depends on unknown task 'gone-9999'"
    assert cpu < max(2.0, 1.5 * unit)


# --- the engine checks the graph it is given


def events_of(project: Path) -> list[Path]:
    return [p for p in (project / "workflows").rglob("*") if p.is_file()]


@pytest.mark.parametrize(
    ("tasks", "task_id", "field", "message"),
    [
        (
            [{"id": "a", "depends_on": ["b"]}, {"id": "b", "depends_on": ["a"]}],
            "a",
            "depends_on",
            "dependency cycle: a -> b -> a",
        ),
        (
            [{"id": "a"}, {"id": "b", "depends_on": ["nope"]}],
            "b",
            "depends_on[0]",
            "depends on unknown task 'nope'",
        ),
        ([{"id": "a", "depends_on": ["a"]}], "a", "depends_on[0]", "task 'a' depends on itself"),
        ([{"id": "a"}, {"id": "a"}], "a", "id", "duplicate task id 'a'"),
        (
            [{"id": "a", "on_failure": "h"}, {"id": "h"}, {"id": "b", "depends_on": ["h"]}],
            "b",
            "depends_on[0]",
            "depends on 'h', which runs only as an on_success/on_failure callback",
        ),
    ],
    ids=["cycle", "unknown", "self", "duplicate", "handler"],
)
def test_the_engine_refuses_a_bad_graph_before_recording_anything(
    project: Path, tasks: list[dict[str, Any]], task_id: str, field: str, message: str
) -> None:
    workflow = Workflow.model_validate(
        {"name": "x", "tasks": [{"type": "shell", "command": "true", **t} for t in tasks]}
    )
    seen: list[Any] = []
    orchestrator = WorkflowOrchestrator(project, sinks=[seen.append])
    with deadline(20), pytest.raises(ValidationError) as caught:
        orchestrator.execute(workflow)
    problem = caught.value.problems[0]
    assert (problem.task_id, problem.field, problem.message) == (task_id, field, message)
    assert seen == [] and events_of(project) == []
    # the same problem validate reports for the same data
    (same, *_) = [p for p in load_report(workflow) if p.task_id == task_id]
    assert (same.field, same.message) == (field, message)


def load_report(workflow: Workflow) -> list[Any]:
    try:
        load_workflow(workflow.model_dump(by_alias=True, exclude_defaults=True))
    except ValidationError as exc:
        return exc.problems
    raise AssertionError("validation found nothing")


def test_the_readme_states_the_limits_the_code_enforces() -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    paragraph = readme[readme.index("Limits, the same for files") :].split("\n\n")[0]
    paragraph = " ".join(paragraph.split())
    for stated in (
        f"{limits.MAX_FILE_BYTES // 2**20} MiB",
        f"{limits.MAX_NODES:,} values",
        f"at most {limits.MAX_DEPTH} deep",
        f"{limits.MAX_TASKS:,} tasks",
        f"{limits.MAX_STRING_CHARS:,} characters",
        f"2**{(limits.MAX_INT + 1).bit_length() - 1}-1",
        f"at most {limits.MAX_CONDITION_DEPTH} deep",
    ):
        assert stated in paragraph, stated
