"""Option values shared by the CLI and the magics: run parameters typed as papermill does."""

from __future__ import annotations

import pytest

from jupyter_workflows.ui.options import parameter_value, parse_parameters


@pytest.mark.parametrize(
    ("text", "value"),
    [("5", 5), ("-3", -3), ("0.5", 0.5), ("1e3", 1000.0), ("True", True), ("False", False),
     ("None", None), ("true", "true"), ("eu", "eu"), ("", ""), ("5 apples", "5 apples")],
)  # fmt: skip
def test_values_are_typed_like_papermill(text: str, value: object) -> None:
    assert parameter_value(text) == value and type(parameter_value(text)) is type(value)


def test_yaml_then_p_which_wins() -> None:
    params = parse_parameters(
        [("n", "5"), ("region", "eu")], ["{n: 1, sizes: [1, 2], deep: {a: b}}", "flag: true"]
    )
    assert params == {"n": 5, "region": "eu", "sizes": [1, 2], "deep": {"a": "b"}, "flag": True}


@pytest.mark.parametrize(
    ("pairs", "yaml", "message"),
    [
        ([("2n", "1")], [], r"-p 2n: parameter name '2n' is not valid"),
        ([], ["[1, 2]"], r"is a list: expected a mapping such as -y 'n: 5'"),
        ([], ["n: [1"], r"is not valid YAML"),
        ([], ["{a-b: 1}"], r"parameter name 'a-b' is not valid"),
    ],
)
def test_bad_parameters_say_what_was_expected(pairs, yaml, message) -> None:
    with pytest.raises(ValueError, match=message):
        parse_parameters(pairs, yaml)
