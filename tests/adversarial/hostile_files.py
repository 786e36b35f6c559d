"""A generator of hostile workflow files: what an attacker, a broken generator or a bad editor
might hand to ``workflow validate``.

``generate(folder)`` writes about 300 files and returns a ``Case`` for each: its path, what the
outcome must be (``valid``, ``invalid``, ``unreadable``, or ``any`` where either is fine and the
point is only that nothing breaks) and whether its errors have a place in the text (a line).
The families: wrong types in every field, deep nesting in every field, huge strings, numbers
out of range, YAML alias bombs and self-references, YAML tags, duplicate keys, anchors shared
across tasks, unicode oddities (BOMs, bidi controls, surrogates, NULs), CRLF and lone CR line
ends, tabs, undecodable bytes, empty files, deep and long conditions, pathological templates,
cron fields, graph shapes, and paths that are not regular files.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jupyter_workflows.definition import limits

VALID, INVALID, UNREADABLE, ANY = "valid", "invalid", "unreadable", "any"


@dataclass
class Case:
    name: str
    path: Path
    expect: str  # VALID, INVALID, UNREADABLE or ANY
    located: bool = True  # every error has a line (False: the whole file is the place)
    contains: str | None = None  # a fragment some problem's message must contain


def base() -> dict[str, Any]:
    return {
        "name": "hostile",
        "tasks": [
            {"id": "a", "type": "shell", "command": "echo a"},
            {"id": "b", "type": "shell", "command": "echo b", "depends_on": ["a"]},
        ],
    }


# Where a value can go: (path in the data, is the key created there).
FIELDS: list[tuple[Any, ...]] = [
    ("name",),
    ("version",),
    ("description",),
    ("trigger",),
    ("notifications",),
    ("defaults",),
    ("defaults", "max_parallel"),
    ("defaults", "environment"),
    ("expected_duration",),
    ("tasks",),
    ("tasks", 0),
    ("tasks", 0, "id"),
    ("tasks", 0, "type"),
    ("tasks", 0, "command"),
    ("tasks", 1, "depends_on"),
    ("tasks", 1, "depends_on", 0),
    ("tasks", 0, "timeout"),
    ("tasks", 0, "retry"),
    ("tasks", 0, "condition"),
    ("tasks", 0, "environment"),
    ("tasks", 0, "environment", "KEY"),
    ("tasks", 0, "cwd"),
    ("tasks", 0, "live_output"),
    ("tasks", 0, "continue_on_error"),
    ("tasks", 0, "on_failure"),
    ("tasks", 0, "name"),
]
WRONG_VALUES: list[Any] = [[], {}, 3, True, None, [[1, {"x": []}]], {"x": {"y": [1]}}, -7.5]


def put(data: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    data = copy.deepcopy(data)
    node: Any = data
    for key in path[:-1]:
        if isinstance(node, dict) and key not in node:
            node[key] = {}
        node = node[key]
    node[path[-1]] = value
    return data


def nested_list(depth: int) -> Any:
    value: Any = "x"
    for _ in range(depth):
        value = [value]
    return value


def nested_dict(depth: int) -> Any:
    value: Any = "x"
    for _ in range(depth):
        value = {"k": value}
    return value


def yaml_tasks(body: str, head: str = "name: hostile\ntasks:\n") -> str:
    return head + body


SHELL_A = "  - id: a\n    type: shell\n    command: echo a\n"


class _Writer:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.cases: list[Case] = []

    def text(self, name: str, text: str, expect: str, **kw: Any) -> None:
        self.raw(name, text.encode("utf-8"), expect, **kw)

    def raw(self, name: str, data: bytes, expect: str, **kw: Any) -> None:
        path = self.folder / f"{len(self.cases):03d}-{name}"
        path.write_bytes(data)
        self.cases.append(Case(name, path, expect, **kw))

    def data(self, name: str, data: Any, expect: str, fmt: str, **kw: Any) -> None:
        if fmt == "json":
            self.text(name + ".json", json.dumps(data, indent=1), expect, **kw)
        else:
            self.text(name + ".yaml", to_yaml(data), expect, **kw)


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)  # YAML takes no JSON surrogate-pair escapes


def to_yaml(data: Any) -> str:
    """Block YAML by hand (``yaml.safe_dump`` recurses, and deep values are the point here);
    nested values are written in flow style, which is JSON."""
    lines: list[str] = []
    for key, value in data.items():
        if key == "tasks" and isinstance(value, list) and value:
            lines.append("tasks:")
            for task in value:
                if isinstance(task, dict) and task:
                    first = True
                    for k, v in task.items():
                        prefix = "  - " if first else "    "
                        lines.append(f"{prefix}{dumps(k)}: {dumps(v)}")
                        first = False
                else:
                    lines.append(f"  - {dumps(task)}")
        else:
            lines.append(f"{dumps(key)}: {dumps(value)}")
    return "\n".join(lines) + "\n"


def generate(folder: Path) -> list[Case]:
    """Write the hostile files into ``folder``; the cases, in order."""
    w = _Writer(folder)
    for family in FAMILIES:
        family(w)
    return w.cases


def _wrong_types(w: _Writer) -> None:
    for i, path in enumerate(FIELDS):
        for j in range(3):
            value = WRONG_VALUES[(i + j) % len(WRONG_VALUES)]
            fmt = "json" if (i + j) % 2 else "yaml"
            w.data(f"wrong-{'-'.join(map(str, path))}-{j}", put(base(), path, value), ANY, fmt)


def _deep_everywhere(w: _Writer) -> None:
    too_deep = limits.MAX_DEPTH + 10
    for i, path in enumerate(FIELDS):
        shape = nested_list if i % 2 else nested_dict
        fmt = "yaml" if i % 3 == 0 else "json"
        data = put(base(), path, shape(too_deep))
        w.data(f"deep-{'-'.join(map(str, path))}", data, INVALID, fmt, contains="deep")
    # Far deeper than any parser's own recursion limit, as raw text.
    for depth in (1_000, 100_000):
        w.text(
            f"deep-{depth}.json",
            '{"name": "x", "tasks": ' + "[" * depth + "]" * depth + "}",
            INVALID,
        )
        w.text(f"deep-{depth}.yaml", "name: x\ntasks: " + "[" * depth + "]" * depth + "\n", INVALID)
    w.text(
        "deep-block.yaml",
        "name: x\ntasks:\n" + "".join(" " * (2 * i) + "- \n" for i in range(500)),
        INVALID,
    )
    w.text(
        "deep-within.json",
        json.dumps(put(base(), ("tasks", 0, "environment"), nested_dict(limits.MAX_DEPTH - 6))),
        INVALID,
    )


def _huge_strings(w: _Writer) -> None:
    big = "x" * (limits.MAX_STRING_CHARS + 1)
    for path in [
        ("name",),
        ("tasks", 0, "id"),
        ("tasks", 0, "command"),
        ("tasks", 0, "condition"),
        ("tasks", 1, "depends_on", 0),
        ("tasks", 0, "environment", "KEY"),
        ("description",),
    ]:
        for fmt in ("json", "yaml"):
            w.data(
                f"huge-{'-'.join(map(str, path))}",
                put(base(), path, big),
                INVALID,
                fmt,
                contains="characters",
            )
    data = base()
    data["tasks"][0][big] = "value"  # a huge key
    w.data("huge-key", data, INVALID, "json")
    w.data("huge-key", data, INVALID, "yaml")
    near = "y" * 5_000  # under every limit: the suggestion machinery gets long words
    data = put(base(), ("tasks", 0, "id"), near)
    data = put(data, ("tasks", 1, "depends_on"), [near[:-1] + "z"])
    w.data("long-similar-ids", data, INVALID, "json")
    w.text(
        "too-big.json",
        '{"name": "x", "tasks": [], "pad": "' + "p" * limits.MAX_FILE_BYTES + '"}',
        INVALID,
        located=False,
        contains="larger",
    )
    w.text(
        "too-big.yaml",
        "# " + "c" * limits.MAX_FILE_BYTES + "\nname: x\n",
        INVALID,
        located=False,
        contains="larger",
    )
    many = ",".join(["1"] * (limits.MAX_NODES + 10))
    w.text("too-many-values.json", '{"name": "x", "tasks": [' + many + "]}", INVALID)
    w.text("too-many-values.yaml", "name: x\ntasks: [" + many + "]\n", INVALID)
    keys = ", ".join(f'"K{i}": "v"' for i in range(limits.MAX_NODES // 2 + 10))
    w.text(
        "too-many-keys.json",
        '{"name": "x", "tasks": [{"id": "a", "type": "shell", '
        '"command": "x", "environment": {' + keys + "}}]}",
        INVALID,
    )
    many_tasks = [{"id": f"t{i}"} for i in range(limits.MAX_TASKS + 1)]
    w.text(
        "too-many-tasks.json",
        json.dumps({"name": "x", "tasks": many_tasks}),
        INVALID,
        contains="tasks",
    )


def _numbers(w: _Writer) -> None:
    literals = {
        "pow400": "1" + "0" * 400,
        "digits5000": "9" * 5000,
        "negative": "-" + "7" * 400,
        "int64-over": str(2**63),
        "exp999": "1e999",
        "neg-exp999": "-1e999",
    }
    for field in ("timeout", "retry-attempts", "max_parallel", "version", "env", "depends"):
        for name, literal in literals.items():
            fmt = "json" if len(w.cases) % 2 else "yaml"
            if field == "timeout":
                body = {"id": "a", "type": "shell", "command": "x", "timeout": "@"}
            elif field == "retry-attempts":
                body = {"id": "a", "type": "shell", "command": "x", "retry": {"attempts": "@"}}
            elif field == "env":
                body = {"id": "a", "type": "shell", "command": "x", "environment": {"N": "@"}}
            elif field == "depends":
                body = {"id": "a", "type": "shell", "command": "x", "depends_on": ["@"]}
            else:
                body = {"id": "a", "type": "shell", "command": "x"}
            data: dict[str, Any] = {"name": "x", "tasks": [body]}
            if field == "max_parallel":
                data["defaults"] = {"max_parallel": "@"}
            if field == "version":
                data["version"] = "@"
            text = json.dumps(data) if fmt == "json" else to_yaml(data)
            text = text.replace('"@"', literal)
            if fmt == "yaml" and "e" in literal:  # YAML 1.1 reads 1e999 as text
                w.text(f"number-{field}-{name}.{fmt}", text, ANY)
            else:
                w.text(f"number-{field}-{name}.{fmt}", text, INVALID, contains="number")
    for name, literal in {"nan": "NaN", "inf": "Infinity", "neg-inf": "-Infinity"}.items():
        w.text(
            f"json-{name}.json",
            '{"name": "x", "tasks": [{"id": "a", "type": "shell", '
            f'"command": "x", "timeout": {literal}}}]}}',
            INVALID,
            contains="number",
        )
    for name, literal in {
        "inf": ".inf",
        "nan": ".nan",
        "neg-inf": "-.inf",
        "hex": "0x" + "f" * 300,
        "sexagesimal": ":".join(["59"] * 200),
        "octal": "0o" + "7" * 300,
        "binary": "0b" + "1" * 300,
        "underscored": "1_000" * 100,
    }.items():
        text = yaml_tasks(SHELL_A + f"    timeout: {literal}\n")
        w.text(f"yaml-number-{name}.yaml", text, INVALID, contains="number")
    for value in ("1e999s", "nan", "inf", "-inf", "9" * 400, "1" * 400 + "s", "1e309"):
        w.data(
            f"duration-{value[:8]}", put(base(), ("tasks", 0, "timeout"), value), INVALID, "json"
        )
    w.data(
        "backoff-huge",
        put(base(), ("tasks", 0, "retry"), {"attempts": 10_000, "backoff": 1e308, "delay": 1e308}),
        ANY,
        "json",
    )
    w.data("tiny-float", put(base(), ("tasks", 0, "timeout"), 1e-320), ANY, "json")


BOMB = (
    'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    + "".join(
        f"{n}: &{n} [" + ",".join([f"*{p}"] * 9) + "]\n"
        for p, n in zip("abcdefgh", "bcdefghi", strict=True)
    )
    + "name: x\ntasks: [{id: a, type: shell, command: x, environment: *i}]\n"
)


def _yaml_aliases(w: _Writer) -> None:
    w.text("bomb-lists.yaml", BOMB, INVALID, contains="alias")
    maps = "a: &a {k1: v, k2: v, k3: v, k4: v, k5: v, k6: v, k7: v, k8: v, k9: v}\n" + "".join(
        f"{n}: &{n} {{" + ", ".join(f"k{i}: *{p}" for i in range(9)) + "}\n"
        for p, n in zip("abcdefgh", "bcdefghi", strict=True)
    )
    w.text("bomb-maps.yaml", maps + "name: x\ntasks: [*i]\n", INVALID, contains="alias")
    merges = "a: &a {k1: v, k2: v}\n" + "".join(
        f"{n}: &{n} {{<<: [" + ", ".join([f"*{p}"] * 9) + "]}\n"
        for p, n in zip("abcdefgh", "bcdefghi", strict=True)
    )
    w.text("bomb-merges.yaml", merges + "name: x\ntasks: [{id: a, <<: *i}]\n", ANY)
    doubling = "".join(f"  - &t{i} [*t{i - 1}, *t{i - 1}]\n" for i in range(1, 40))
    w.text(
        "bomb-in-tasks.yaml",
        yaml_tasks("  - &t0 {id: a, type: shell, command: x}\n" + doubling),
        INVALID,
        contains="alias",
    )
    w.text(
        "self-seq.yaml",
        yaml_tasks(SHELL_A + "    environment: &e [*e]\n"),
        INVALID,
        contains="alias",
    )
    w.text(
        "self-map.yaml",
        yaml_tasks(SHELL_A + "    environment: &e {K: *e}\n"),
        INVALID,
        contains="alias",
    )
    w.text(
        "self-merge.yaml", yaml_tasks("  - &t {id: a, type: shell, command: x, <<: *t}\n"), INVALID
    )
    w.text(
        "self-tasks.yaml",
        "name: x\ntasks: &t\n  - id: a\n    type: shell\n    command: x\n    depends_on: *t\n",
        INVALID,
        contains="alias",
    )
    w.text("self-top.yaml", "&top\nname: x\ntasks: [*top]\n", INVALID)
    w.text("undefined-alias.yaml", yaml_tasks(SHELL_A + "    environment: *nope\n"), INVALID)
    w.text(
        "anchor-across-tasks.yaml",
        yaml_tasks(
            "  - id: a\n    type: shell\n    command: x\n    environment: &env {A: '1', B: '2'}\n"
            "  - id: b\n    type: shell\n    command: y\n    environment: *env\n"
        ),
        VALID,
    )
    w.text(
        "merge-across-tasks.yaml",
        yaml_tasks(
            "  - &base {id: a, type: shell, command: x, timeout: 5}\n"
            "  - <<: *base\n    id: b\n    depends_on: [a]\n"
        ),
        VALID,
    )
    w.text(
        "bad-anchor-shared.yaml",
        yaml_tasks(
            "  - id: a\n    type: shell\n    command: x\n    retry: &r {attempts: many}\n"
            "  - id: b\n    type: shell\n    command: y\n    retry: *r\n"
        ),
        INVALID,
    )
    w.text(
        "alias-as-key.yaml",
        yaml_tasks("  - &k id: a\n    type: shell\n    command: x\n    *k : b\n"),
        ANY,
    )
    w.text("merge-non-mapping.yaml", yaml_tasks(SHELL_A + "    <<: [1, 2]\n"), INVALID)


def _yaml_tags(w: _Writer, marker: Path) -> None:
    dangerous = [
        f"!!python/object/apply:os.system ['touch {marker}']",
        f"!!python/object/apply:subprocess.check_output [['touch', '{marker}']]",
        "!!python/object:collections.OrderedDict {}",
        "!!python/name:os.system",
        "!!python/module:os",
        "!!python/tuple [1, 2]",
        "!!python/bytes aGVsbG8=",
        "!<tag:yaml.org,2002:python/object/new:os.system> [ls]",
        "!custom value",
        "!!set {a, b}",
        "!!omap [a: 1]",
        "!!pairs [a: 1]",
    ]
    for i, tag in enumerate(dangerous):
        where = "name: " if i % 2 else "tasks:\n  - id: a\n    type: shell\n    command: "
        head = "tasks: [{id: b, type: shell, command: x}]\n" if i % 2 else "name: x\n"
        w.text(f"tag-{i}.yaml", head + where + tag + "\n", INVALID)
    for i, tag in enumerate(
        [
            "!!binary aGVsbG8=",
            "!!timestamp 2024-01-01",
            "!!float 1.5",
            "!!str 123",
            "!!int '12'",
            "!!bool yes",
            "!!null ''",
            "!!str",
            "!!map {a: b}",
            "!!seq [a]",
        ]
    ):
        w.text(
            f"std-tag-{i}.yaml",
            f"name: x\ntasks:\n  - id: a\n    type: shell\n    command: x\n    name: {tag}\n",
            ANY,
        )


def _duplicates(w: _Writer) -> None:
    w.text(
        "dup-top.yaml",
        "name: x\nname: y\ntasks: [{id: a, type: shell, command: x}]\n",
        INVALID,
        contains="duplicate key",
    )
    w.text(
        "dup-task.yaml",
        yaml_tasks(SHELL_A + "    command: again\n"),
        INVALID,
        contains="duplicate key",
    )
    w.text(
        "dup-top.json",
        '{"name": "x", "name": "y", "tasks": [{"id": "a", "type": "shell", "command": "x"}]}',
        INVALID,
        contains="duplicate key",
    )
    w.text(
        "dup-task.json",
        '{"name": "x", "tasks": [{"id": "a", "type": "shell", "command": "x",\n "command": "y"}]}',
        INVALID,
        contains="duplicate key",
    )
    w.text(
        "dup-merge-ok.yaml",
        yaml_tasks("  - &b {id: a, type: shell, command: x}\n  - <<: *b\n    id: b\n"),
        VALID,
    )
    w.text(
        "dup-ids.json",
        json.dumps({"name": "x", "tasks": [{"id": "a", "type": "shell", "command": "x"}] * 50}),
        INVALID,
    )


def _unicode(w: _Writer) -> None:
    odd = {
        "rlo": "a\u202eb",
        "zero-width": "a\u200bb",
        "combining": "e\u0301",
        "fullwidth": "\uff41",
        "emoji": "\U0001f600",
        "ansi": "\x1b[2J\x1b[31mred",
        "bidi-isolate": "\u2066x\u2069",
        "nbsp": "a\u00a0b",
        "cyrillic": "\u0430",
    }
    for name, text in odd.items():
        data = put(base(), ("tasks", 0, "id"), text)
        w.data(f"uni-id-{name}", data, INVALID, "json" if len(name) % 2 else "yaml")
        data = put(base(), ("tasks", 1, "depends_on"), [text])
        w.data(f"uni-dep-{name}", data, INVALID, "yaml" if len(name) % 2 else "json")
        data = base()
        data["tasks"][0]["comm" + text] = "x"
        w.data(f"uni-key-{name}", data, INVALID, "json")
    w.data("uni-name-ok", put(base(), ("name",), "d\u00e9ploiement \U0001f680"), VALID, "yaml")
    w.text(
        "surrogate.json",
        '{"name": "x\\ud800", "tasks": [{"id": "a", "type": "shell", "command": "x"}]}',
        INVALID,
        contains="surrogate",
    )
    w.text(
        "surrogate-key.json",
        '{"name": "x", "tasks": [{"id": "a", "type": "shell", "command": "x", "\\udfff": 1}]}',
        INVALID,
        contains="surrogate",
    )
    w.text(
        "nul-escape.json",
        '{"name": "x", "tasks": [{"id": "a", "type": "shell", "command": "echo \\u0000 hi"}]}',
        INVALID,
        contains="NUL",
    )
    w.text(
        "nul-escape.yaml",
        yaml_tasks(SHELL_A.replace("echo a", '"echo \\0 hi"')),
        INVALID,
        contains="NUL",
    )
    w.text(
        "yaml-surrogate-escape.yaml",
        'name: "x\\ud800"\ntasks: [{id: a, type: shell, command: x}]\n',
        INVALID,
    )
    good = "name: x\ntasks:\n  - id: a\n    type: shell\n    command: echo a\n"
    w.raw("bom.yaml", b"\xef\xbb\xbf" + good.encode(), VALID)
    w.raw("bom.json", b"\xef\xbb\xbf" + json.dumps(base()).encode(), VALID)
    w.raw("bom-twice.yaml", b"\xef\xbb\xbf\xef\xbb\xbf" + good.encode(), ANY)
    w.raw("bom-middle.yaml", good.replace("echo a", "echo \ufeffa").encode(), ANY)
    w.raw("bom-middle-key.yaml", good.replace("command", "\ufeffcommand").encode(), INVALID)
    w.raw("utf16.yaml", good.encode("utf-16"), INVALID, contains="UTF-8")
    w.raw(
        "utf16be.json",
        b"\xfe\xff" + json.dumps(base()).encode("utf-16-be"),
        INVALID,
        contains="UTF-8",
    )
    w.raw("utf32.json", json.dumps(base()).encode("utf-32"), INVALID, contains="UTF-8")
    w.raw(
        "latin1-line3.yaml",
        "name: x\ntasks:\n  - id: caf\xe9\n".encode("latin-1"),
        INVALID,
        contains="UTF-8",
    )
    w.raw("bad-start.json", b"\xff" + json.dumps(base()).encode(), INVALID, contains="UTF-8")
    w.raw("truncated-utf8.yaml", good.encode() + b"# \xe2\x82", INVALID, contains="UTF-8")
    w.raw("overlong.yaml", good.encode() + b"# \xc0\xaf\n", INVALID, contains="UTF-8")
    w.raw("encoded-surrogate.yaml", good.encode() + b"# \xed\xa0\x80\n", INVALID, contains="UTF-8")
    w.raw(
        "nul-line4.yaml",
        b"name: x\ntasks:\n  - id: a\n    type: sh\x00ell\n",
        INVALID,
        contains="NUL",
    )
    w.raw("nul-line2.json", b'{"name": "x",\n "tasks": [\x00]}', INVALID)
    w.raw("nul-first.yaml", b"\x00name: x\n", INVALID)
    w.raw("nul-in-string.json", b'{"name": "a\x00b", "tasks": []}', INVALID)
    w.raw("control-bell.yaml", b"name: x\x07\ntasks: []\n", INVALID)
    w.raw("del-char.yaml", b"name: x\x7f\ntasks: [{id: a, type: shell, command: x}]\n", ANY)
    w.raw("c1-control.yaml", "name: x\x85y\ntasks: []\n".encode(), ANY)


def _line_ends(w: _Writer) -> None:
    good = "name: x\ntasks:\n  - id: a\n    type: shell\n    command: echo a\n"
    w.raw("crlf.yaml", good.replace("\n", "\r\n").encode(), VALID)
    w.raw("crlf.json", json.dumps(base(), indent=1).replace("\n", "\r\n").encode(), VALID)
    bad = good.replace("command: echo a", "comand: echo a")
    w.raw("crlf-error.yaml", bad.replace("\n", "\r\n").encode(), INVALID, contains="comand")
    w.raw("cr-only.yaml", bad.replace("\n", "\r").encode(), INVALID)
    w.raw("mixed-ends.yaml", b"name: x\r\ntasks:\r  - id: a\n    type: shel\r\n", INVALID)
    w.raw(
        "crlf-error.json",
        json.dumps(put(base(), ("tasks", 0, "timeout"), "soon"), indent=1)
        .replace("\n", "\r\n")
        .encode(),
        INVALID,
    )
    w.raw("tab-indent.yaml", b"name: x\ntasks:\n\t- id: a\n\t  type: shell\n", INVALID)
    w.raw("tab-mixed.yaml", b"name: x\ntasks:\n  - id: a\n  \ttype: shell\n", INVALID)
    w.raw("tab-in-value.yaml", b"name: x\ttab\ntasks: [{id: a, type: shell, command: x}]\n", VALID)
    w.raw("long-line.json", json.dumps(put(base(), ("description",), "d" * 90_000)).encode(), VALID)


def _empty_and_odd(w: _Writer) -> None:
    for name, text in {
        "empty.yaml": "",
        "empty.json": "",
        "spaces.yaml": "   \n\n  ",
        "comments.yaml": "# nothing\n# here\n",
        "dashes.yaml": "---\n",
        "dots.yaml": "...\n",
        "null.yaml": "null\n",
        "tilde.yaml": "~\n",
    }.items():
        w.text(name, text, INVALID, located=False)
    for name, text in {
        "list.yaml": "- a\n- b\n",
        "scalar.yaml": "just text\n",
        "number.json": "42",
        "list.json": "[]",
        "string.json": '"x"',
        "braces.json": "{}",
        "braces.yaml": "{}\n",
        "two-docs.yaml": "name: x\n---\nname: y\n",
        "json-comment.json": '{"name": "x", // hi\n "tasks": []}',
        "json-trailing.json": '{"name": "x", "tasks": [],}',
        "json-single.json": "{'name': 'x'}",
        "json-unquoted.json": "{name: 1}",
        "json-extra.json": '{"name": "x", "tasks": []} {}',
        "unhashable-key.yaml": "name: x\n? [a, b]\n: c\ntasks: []\n",
        "mapping-key.yaml": "name: x\n{a: 1}: c\ntasks: []\n",
        "int-keys.yaml": "name: x\n1: c\ntasks: [{id: a, type: shell, command: x, 2: y}]\n",
        "bool-keys.yaml": "name: x\non: push\ntasks: [{id: a, type: shell, command: x}]\n",
        "null-key.yaml": "name: x\n~: c\ntasks: [{id: a, type: shell, command: x}]\n",
        "float-key.yaml": "name: x\n1.5: c\ntasks: [{id: a, type: shell, command: x}]\n",
        "unclosed.yaml": "name: [x\ntasks: []\n",
        "bad-indent.yaml": "name: x\n tasks: []\n",
        "directive.yaml": "%YAML 1.1\n%TAG ! tag:evil,2000:\n---\nname: !x y\n",
        "anchor-only.yaml": "name: &a\ntasks: []\n",
    }.items():
        w.text(name, text, INVALID)
    for name, value in {
        "null-tasks": None,
        "empty-tasks": [],
        "tasks-map": {"a": 1},
        "tasks-str": "a,b",
        "null-task": [None],
        "int-task": [5],
    }.items():
        w.data(name, put(base(), ("tasks",), value), INVALID, "yaml")
        w.data(name, put(base(), ("tasks",), value), INVALID, "json")


def _conditions(w: _Writer) -> None:
    cases = {
        "parens-300": "(" * 300 + "true" + ")" * 300,
        "parens-5000": "(" * 5000 + "true" + ")" * 5000,
        "not-300": "!" * 300 + "true",
        "not-20000": "!" * 20_000 + "true",
        "mixed": "!(" * 400 + "true" + ")" * 400,
        "unclosed-deep": "(" * 3000,
        "and-chain": " && ".join(["true"] * 3000),
        "or-chain": " || ".join(["${tasks.a.exit_code} == 0"] * 2000),
        "long-string": "'" + "s" * 50_000 + "' == 'x'",
        "unterminated": "'" + "s" * 50_000,
        "refs": " && ".join(["${env.X}"] * 3000),
    }
    for name, text in cases.items():
        expect = ANY if name in ("and-chain", "or-chain", "refs", "long-string") else INVALID
        data = put(base(), ("tasks", 1, "condition"), text)
        w.data(f"cond-{name}", data, expect, "json" if len(name) % 2 else "yaml")


def _templates(w: _Writer) -> None:
    cases = {
        "opens": "${" * 20_000,
        "escapes": "$${" * 20_000,
        "deep-path": "${tasks.a.result." + ".".join(["k"] * 10_000) + "}",
        "unclosed": "echo ${tasks.a.result" + " x" * 20_000,
        "many-refs": " ".join(["${tasks.a.result}"] * 10_000),
        "bad-refs": " ".join(["${tasks.zz.result}"] * 5_000),
        "dollar-noise": "$" * 50_000,
        "brace-noise": "}" * 50_000 + "${",
    }
    for name, text in cases.items():
        expect = ANY if name in ("escapes", "deep-path", "many-refs", "dollar-noise") else INVALID
        data = put(base(), ("tasks", 1, "command"), text)
        w.data(f"tmpl-{name}", data, expect, "yaml" if len(name) % 2 else "json")


def _cron(w: _Writer) -> None:
    for i, (schedule, zone) in enumerate(
        [
            ("9" * 30 + " * * * *", None),
            ("*/0 * * * *", None),
            ("0-" + "9" * 5000 + " * * * *", None),
            (" ".join(["*"] * 1000), None),
            ("* * * * *", "../../../etc/passwd"),
            ("* * * * *", "UTC\x00"),
            ("* * * * *", "Z" * 10_000),
            ("0 0 31 2 *", None),
            ("@reboot", None),
            ("* * * * *", "/etc/localtime"),
        ]
    ):
        config: dict[str, Any] = {"schedule": schedule}
        if zone is not None:
            config["timezone"] = zone
        data = put(base(), ("trigger",), {"type": "cron", "config": config})
        w.data(f"cron-{i}", data, INVALID, "json" if i % 2 else "yaml")


def _graphs(w: _Writer) -> None:
    n = 1000
    ring = [
        {"id": f"t{i}", "type": "shell", "command": "x", "depends_on": [f"t{(i + 1) % n}"]}
        for i in range(n)
    ]
    w.data("ring-1000", {"name": "x", "tasks": ring}, INVALID, "json", contains="cycle")
    dense = [
        {
            "id": f"t{i}",
            "type": "shell",
            "command": "x",
            "depends_on": [f"t{j}" for j in range(i + 1, min(i + 30, 300))] + ["t0"],
        }
        for i in range(300)
    ]
    w.data("dense-cycles", {"name": "x", "tasks": dense}, INVALID, "json", contains="cycle")
    unknown = [
        {"id": f"task-{i}", "type": "shell", "command": "x", "depends_on": [f"task-{i + 5000}x"]}
        for i in range(2000)
    ]
    w.data("unknown-2000", {"name": "x", "tasks": unknown}, INVALID, "json", contains="unknown")
    chain = [
        {
            "id": f"c{i}",
            "type": "shell",
            "command": "echo ${tasks.c1999.result}",
            "depends_on": [f"c{i - 1}"] if i else [],
        }
        for i in range(2000)
    ]
    w.data(
        "chain-refs-downstream", {"name": "x", "tasks": chain}, INVALID, "json", contains="upstream"
    )
    w.data("self-dep", put(base(), ("tasks", 0, "depends_on"), ["a"]), INVALID, "yaml")
    w.data(
        "dep-on-handler",
        {
            "name": "x",
            "tasks": [
                {"id": "a", "type": "shell", "command": "x", "on_failure": "h"},
                {"id": "h", "type": "shell", "command": "x"},
                {"id": "b", "type": "shell", "command": "x", "depends_on": ["h"]},
            ],
        },
        INVALID,
        "yaml",
        contains="on_failure",
    )
    nested: Any = {"id": "leaf", "type": "shell", "command": "x"}
    for i in range(limits.MAX_DEPTH):
        nested = {"id": f"n{i}", "type": "conditional", "condition": "true", "then": nested}
    w.data("nested-composites", {"name": "x", "tasks": [nested]}, INVALID, "json")


def _not_files(w: _Writer) -> None:
    folder = w.folder
    directory = folder / f"{len(w.cases):03d}-a-directory.yaml"
    directory.mkdir()
    w.cases.append(Case("directory", directory, UNREADABLE, located=False))
    missing = folder / f"{len(w.cases):03d}-missing.yaml"
    w.cases.append(Case("missing", missing, UNREADABLE, located=False))
    fifo = folder / f"{len(w.cases):03d}-fifo.yaml"
    os.mkfifo(fifo)
    w.cases.append(Case("fifo", fifo, UNREADABLE, located=False, contains="regular file"))
    for device in ("/dev/zero", "/dev/urandom", "/dev/null"):
        link = folder / f"{len(w.cases):03d}-{Path(device).name}.yaml"
        link.symlink_to(device)
        w.cases.append(Case(device, link, UNREADABLE, located=False))
    loop = folder / f"{len(w.cases):03d}-loop.yaml"
    loop.symlink_to(loop)
    w.cases.append(Case("symlink-loop", loop, UNREADABLE, located=False))
    dangling = folder / f"{len(w.cases):03d}-dangling.yaml"
    dangling.symlink_to(folder / "nowhere")
    w.cases.append(Case("dangling", dangling, UNREADABLE, located=False))


MARKER_NAME = "PWNED-by-a-yaml-tag"


def _tags_with_marker(w: _Writer) -> None:
    _yaml_tags(w, w.folder / MARKER_NAME)


FAMILIES: list[Callable[[_Writer], None]] = [
    _wrong_types,
    _deep_everywhere,
    _huge_strings,
    _numbers,
    _yaml_aliases,
    _tags_with_marker,
    _duplicates,
    _unicode,
    _line_ends,
    _empty_and_odd,
    _conditions,
    _templates,
    _cron,
    _graphs,
    _not_files,
]


def iter_batches(cases: list[Case], size: int) -> Iterator[list[Case]]:
    for start in range(0, len(cases), size):
        yield cases[start : start + size]
