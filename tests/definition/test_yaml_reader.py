"""The bounded YAML reader reads what ``yaml.safe_load`` reads, places every path, and refuses
what is not plain data."""

from __future__ import annotations

import textwrap

import pytest
import yaml

from jupyter_workflows.definition import limits, yaml_reader
from jupyter_workflows.definition.yaml_reader import YamlProblem

SAME_AS_SAFE_LOAD = [
    "name: x\ntasks:\n  - {id: a, type: shell, command: make}\n",
    "a: [yes, no, on, off, true, False, ~, null, '', 1:30, 0x1f, 017, 0, -5, +7, 1_000]\n",
    "digits: [7, 42, 1234567, 0, 00, 08, 09, 1_2, '12', !!str 3, \u0661\u0662, \uff11]\n",
    "b: [1.5, 1.5e+3, 1.5e3, .5, 6.8523015e+5, 685.230_15e+03, 190:20:30.15, -0.0]\n",
    "c: [2024-01-01, 2001-12-14t21:59:43.10-05:00, !!str 12, !!binary aGk=, !!float 1]\n",
    "d: |\n  line one\n  line two\ne: >\n  folded\n  text\nf: 'it''s'\ng: \"tab\\tnew\\n\"\n",
    "base: &b {x: 1, y: [1, 2]}\nuse: *b\nmerged: {<<: *b, y: 3}\n",
    "m: {<<: [{a: 1, b: 2}, {b: 3, c: 4}], c: 5}\n",
    "? complex\n: value\nempty:\nnested: {a: {b: {c: [[], {}]}}}\n",
    "- top\n- level\n- [list]\n",
    "just a scalar\n",
    "",
    "---\nname: x\n...\n",
]


@pytest.mark.parametrize("text", SAME_AS_SAFE_LOAD)
def test_reads_what_safe_load_reads(text: str) -> None:
    data, excess, _ = yaml_reader.read(text)
    assert data == yaml.safe_load(text) and excess == []


def test_positions_of_keys_items_and_aliases() -> None:
    text = textwrap.dedent(
        """\
        name: x
        env: &e {A: '1'}
        tasks:
          - id: a
            environment: *e
        """
    )
    positions = yaml_reader.positions(text)
    assert positions[("env", "A")] == (2, 10)
    assert positions[("tasks", 0)] == (4, 5)
    assert positions[("tasks", 0, "environment")] == (5, 5)
    assert ("tasks", 0, "environment", "A") not in positions  # inside an alias: its holder


def test_repeated_keys_and_values_beyond_limits_come_with_their_paths() -> None:
    text = "name: x\nname: y\nlist: [1, 99999999999999999999, .nan]\n'k\\0': 1\n"
    data, excess, _ = yaml_reader.read(text.replace("'k\\0'", '"k\\0"'))
    assert data["name"] == "y"
    assert [path for _, path in excess] == [("name",), ("list", 1), ("list", 2), ("k\0",)]
    assert excess[0][0] == "duplicate key 'name'"
    assert excess[3][0].startswith("key: text contains a NUL")


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("a: !!python/object:os.system {}\n", 1, "unsupported YAML tag '!!python/object"),
        ("a: !!set {x}\n", 1, "unsupported YAML tag '!!set'"),
        ("a: !local x\n", 1, "unsupported YAML tag '!local'"),
        ("a: &a\n  - *a\n", 2, "refers to its own anchor"),
        ("a: *nowhere\n", 1, "unknown alias '*nowhere'"),
        ("a: 1\n---\nb: 2\n", 2, "expected a single document"),
        ("? [a]\n: b\n", 1, "a mapping key must be a single value"),
        ("a: {<<: [1]}\n", 1, "a merge key '<<' takes a mapping"),
        ("a: !!int x\n", 1, "cannot read 'x' as !!int"),
        ("a: " + "[" * (limits.MAX_DEPTH + 1) + "]" * (limits.MAX_DEPTH + 1) + "\n", 1, "deep"),
    ],
)
def test_what_is_not_plain_data_is_refused_where_it_is(text: str, line: int, message: str) -> None:
    with pytest.raises(YamlProblem) as caught:
        yaml_reader.read(text)
    assert caught.value.line == line - 1 and message in caught.value.message


def test_aliases_count_each_time_they_are_used() -> None:
    row = "[" + ", ".join(["x"] * 99) + "]"  # 100 values
    uses = (limits.MAX_NODES - 200) // 100  # just under the limit

    def text(count: int) -> str:
        return f"r: &r {row}\nall: [" + ", ".join(["*r"] * count) + "]\n"

    data, _, _ = yaml_reader.read(text(uses))
    assert len(data["all"]) == uses and data["all"][0] is data["r"]  # shared, not copied
    with pytest.raises(YamlProblem, match="once YAML aliases are expanded"):
        yaml_reader.read(text(uses + 5))
