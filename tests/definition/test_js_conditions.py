"""Alert conditions in the original's JavaScript style: parsed and evaluated by our own code."""

from __future__ import annotations

import pytest

from jupyter_workflows.definition.js_conditions import (
    check_template,
    parse_js_condition,
    render_template,
)
from jupyter_workflows.errors import ExpressionError

SCOPE = {
    "execution": {"status": "failed", "duration": 1500, "error": "boom"},
    "workflow": {"name": "ci", "expected_duration": 600.0},
    "metrics": {"successRate": 85.5, "totalRuns": 20},
    "error": {"message": "task 'x' failed"},
}


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ("execution.status === 'failed'", True),
        ('execution.status === "completed"', False),
        ("metrics.successRate < 90", True),
        ("execution.duration > workflow.expected_duration * 2", True),
        ("execution.duration > workflow.expected_duration * 3", False),
        ("!(metrics.successRate >= 90) && execution.status !== 'cancelled'", True),
        ("metrics.totalRuns % 7 == 6 || false", True),
        ("metrics.totalRuns === '20'", False),  # strict: a number is not text
        ("metrics.totalRuns == '20'", True),  # loose: numeric text equals the number
        ("-metrics.totalRuns + 25 - 5 == 0", True),
        ("execution.error", True),
        ("workflow.version === null", True),  # unset is null
    ],
)
def test_conditions_evaluate_as_javascript_would(condition: str, expected: bool) -> None:
    assert parse_js_condition(condition).holds(SCOPE) is expected


def test_a_missing_expected_duration_never_fires_the_duration_rule() -> None:
    scope = {**SCOPE, "workflow": {"name": "ci", "expected_duration": None}}
    rule = parse_js_condition("execution.duration > workflow.expected_duration * 2")
    assert rule.holds(scope) is False


@pytest.mark.parametrize(
    ("condition", "message", "position"),
    [
        ("execution.staus === 'failed'", "unknown name 'execution.staus'", 0),
        ("process.exit(1)", "unknown name 'process.exit'", 0),
        ("metrics.successRate = 90", "unexpected '=': use '===' or '==' to compare", 20),
        ("(metrics.successRate < 90", "expected ')' to close the '(' at 0", 25),
        ("execution.status === 'failed", "unterminated string", 21),
        ("metrics.successRate <", "expected a value, found the end", 21),
        ("", "empty condition", 0),
        ("this.constructor", "unknown name 'this.constructor'", 0),
    ],
)
def test_bad_conditions_say_what_and_where(condition: str, message: str, position: int) -> None:
    with pytest.raises(ExpressionError) as caught:
        parse_js_condition(condition)
    assert caught.value.reason.startswith(message) and caught.value.position == position


def test_templates_render_and_unknown_names_are_refused() -> None:
    text = (
        "Workflow ${workflow.name} failed: ${error.message} "
        "(${metrics.successRate}%, ${execution.duration}ms)"
    )
    check_template(text)
    assert render_template(text, SCOPE) == "Workflow ci failed: task 'x' failed (85.5%, 1500ms)"
    assert render_template("${metrics.failedRuns}", SCOPE) == ""
    with pytest.raises(ExpressionError, match="unknown name 'workflow.title'"):
        check_template("${workflow.title}")
