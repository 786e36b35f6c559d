"""${...} templates, shell quoting and conditions (definition/templates.py, shell_quoting.py,
conditions.py)."""

from __future__ import annotations

import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from jupyter_workflows.definition.conditions import Condition, parse_condition, truthy
from jupyter_workflows.definition.shell_quoting import render_shell
from jupyter_workflows.definition.templates import (
    Reference,
    Scope,
    TaskView,
    UnresolvedReference,
    find_references,
    parse_template,
    render,
    render_value,
    to_text,
)
from jupyter_workflows.errors import ExpressionError
from jupyter_workflows.execution.states import State


@pytest.fixture
def scope() -> Scope:
    return Scope(
        env={"DEPLOY_ENABLED": "true", "NAME": "world", "COUNT": "10"},
        tasks={
            "build": TaskView(
                result={"version": "1.2", "files": ["a.txt", {"name": "b.txt"}], "ok": True},
                exit_code=0,
                status="succeeded",
                outputs={"artifact": "dist/app.whl", "meta": {"size": 3}},
                duration=1.5,
            ),
            "health-check": TaskView(result="healthy", exit_code=0, status="succeeded"),
            "json-text": TaskView(result='{"a": 1}', exit_code=0, status="succeeded"),
            "broken": TaskView(exit_code=2, status="failed", error="boom"),
            "list": TaskView(result=[1, 2, 3], status="succeeded"),
        },
        variables={"item": {"id": 7, "tags": ["x", "y"]}, "input": "report"},
        secrets={"TOKEN": "s3cret"},
        webhook={"payload": {"ref": "main", "commits": [{"id": "abc"}]}},
    )


def resolve(text: str, scope: Scope) -> Any:
    (ref,) = find_references(text)
    return scope.resolve(ref)


# --------------------------------------------------------------------------- parsing


@pytest.mark.parametrize(
    ("text", "scope_name", "path"),
    [
        ("${env.HOME}", "env", ("HOME",)),
        ("${secret.TOKEN}", "secret", ("TOKEN",)),
        ("${tasks.build.result}", "tasks", ("build", "result")),
        ("${tasks.build.result.files.0}", "tasks", ("build", "result", "files", "0")),
        ("${tasks.health-check.exit_code}", "tasks", ("health-check", "exit_code")),
        ("${tasks.a_b.outputs.KEY}", "tasks", ("a_b", "outputs", "KEY")),
        ("${webhook.payload.ref}", "webhook", ("payload", "ref")),
        ("${item}", "var", ("item",)),
        ("${item.field}", "var", ("item", "field")),
        ("${input}", "var", ("input",)),
        ("${env}", "var", ("env",)),  # a bare name is always a variable
        ("${tasks}", "var", ("tasks",)),
        ("${ env.X }", "env", ("X",)),
        ("${my-var.sub-key.3}", "var", ("my-var", "sub-key", "3")),
    ],
)
def test_reference_forms(text: str, scope_name: str, path: tuple[str, ...]) -> None:
    (ref,) = find_references(text)
    assert (ref.scope, ref.path, ref.text, ref.start, ref.end) == (
        scope_name,
        path,
        text,
        0,
        len(text),
    )


def test_reference_offsets_and_task_id() -> None:
    text = "run ${tasks.health-check.result} for ${ env.NAME }!"
    first, second = find_references(text)
    assert text[first.start : first.end] == first.text == "${tasks.health-check.result}"
    assert text[second.start : second.end] == second.text == "${ env.NAME }"
    assert first.task_id == "health-check" and first.task_field == "result"
    assert second.task_id is None and second.task_field is None


def test_escape_is_not_a_reference() -> None:
    refs = find_references("$${not.a.ref} ${env.X} $$ $${")
    assert [r.text for r in refs] == ["${env.X}"]
    assert refs[0].start == len("$${not.a.ref} ")


def test_parse_template_aliases_find_references() -> None:
    assert parse_template("${a} ${b}") == find_references("${a} ${b}")
    assert find_references("no templates here, $HOME and {braces}") == []


@pytest.mark.parametrize(
    ("text", "fragment", "position"),
    [
        ("echo ${env.X", "unclosed", 5),
        ("${}", "empty reference", 0),
        ("${   }", "empty reference", 0),
        ("${env.A B}", "invalid character ' '", 7),
        ("${a+b}", "invalid character '+'", 3),
        ("${a${b}}", "missing '}'", 3),
        ("${env..X}", "empty name", 6),
        ("${.x}", "empty name", 2),
        ("${x.}", "empty name", 4),
        ("${tasks.build}", "missing field after task id 'build'", 0),
        ("${tasks.build.bogus}", "unknown task field 'bogus'", 0),
        ("${tasks.build.exit_code.x}", "no sub-fields", 0),
        ("${env.A.B}", "exactly one name", 0),
        ("${secret.A.B}", "exactly one name", 0),
        ("ok ${env.X} then ${ env. }", "empty name", 24),
    ],
)
def test_parse_errors(text: str, fragment: str, position: int) -> None:
    with pytest.raises(ExpressionError) as caught:
        find_references(text)
    assert fragment in str(caught.value)
    assert caught.value.position == position
    assert caught.value.expression == text


# --------------------------------------------------------------------------- resolution


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("${env.NAME}", "world"),
        ("${env.NOT_SET}", ""),
        ("${tasks.build.result.version}", "1.2"),
        ("${tasks.build.result.files.0}", "a.txt"),
        ("${tasks.build.result.files.1.name}", "b.txt"),
        ("${tasks.build.exit_code}", 0),
        ("${tasks.build.status}", "succeeded"),
        ("${tasks.build.outputs.artifact}", "dist/app.whl"),
        ("${tasks.build.outputs.meta.size}", 3),
        ("${tasks.build.duration}", 1.5),
        ("${tasks.broken.error}", "boom"),
        ("${tasks.broken.result}", None),
        ("${tasks.health-check.result}", "healthy"),
        ("${tasks.json-text.result}", '{"a": 1}'),  # JSON text is not re-parsed
        ("${tasks.list.result}", [1, 2, 3]),
        ("${secret.TOKEN}", "s3cret"),
        ("${webhook.payload.ref}", "main"),
        ("${webhook.payload.commits.0.id}", "abc"),
        ("${item}", {"id": 7, "tags": ["x", "y"]}),
        ("${item.tags.1}", "y"),
        ("${input}", "report"),
    ],
)
def test_resolve(scope: Scope, text: str, expected: Any) -> None:
    assert resolve(text, scope) == expected


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("${tasks.nope.result}", "unknown task 'nope'"),
        ("${nope}", "unknown variable 'nope'"),
        ("${nope.x}", "unknown variable 'nope'"),
        ("${tasks.build.outputs.missing}", "no output 'missing'"),
        ("${tasks.build.result.missing}", "no key 'missing'"),
        ("${tasks.build.result.files.9}", "no index '9'"),
        ("${tasks.build.result.files.name}", "no index 'name'"),
        ("${tasks.build.result.version.x}", "cannot look up 'x'"),
        ("${tasks.json-text.result.a}", "cannot look up 'a'"),
        ("${tasks.broken.result.x}", "it is null"),
        ("${item.nope}", "no key 'nope' in item"),
        ("${secret.MISSING}", "unknown secret 'MISSING'"),
    ],
)
def test_unresolved(scope: Scope, text: str, fragment: str) -> None:
    with pytest.raises(UnresolvedReference) as caught:
        resolve(text, scope)
    assert isinstance(caught.value, ExpressionError)
    assert fragment in str(caught.value)
    assert text in str(caught.value)  # the message names the reference
    assert caught.value.reference.text == text


def test_unresolved_is_picklable(scope: Scope) -> None:
    with pytest.raises(UnresolvedReference) as caught:
        resolve("${tasks.nope.result}", scope)
    copy = pickle.loads(pickle.dumps(caught.value))
    assert str(copy) == str(caught.value) and copy.reference == caught.value.reference


def test_webhook_missing_raises() -> None:
    with pytest.raises(UnresolvedReference, match="not triggered"):
        resolve("${webhook.payload.ref}", Scope(env={}))


def test_loop_variable_named_env(scope: Scope) -> None:
    inner = scope.child(env="staging")
    assert render("${env} ${env.NAME}", inner) == "staging world"


def test_child_nests_and_shadows(scope: Scope) -> None:
    outer = scope.child(item="a")
    inner = outer.child(sub="b")
    assert render("${item}${sub}${input}", inner) == "abreport"
    assert render("${item.id}", scope) == "7"  # the parent is unchanged
    with pytest.raises(UnresolvedReference):
        render("${sub}", outer)


# --------------------------------------------------------------------------- rendering


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("plain", "plain"),
        ("", ""),
        (None, ""),
        (True, "true"),
        (False, "false"),
        (0, "0"),
        (42, "42"),
        (1.5, "1.5"),
        ({"a": [1, "é"], "b": None}, '{"a":[1,"é"],"b":null}'),
        ([1, "x", True], '[1,"x",true]'),
        (State.SUCCEEDED, "succeeded"),
    ],
)
def test_to_text(value: Any, text: str) -> None:
    assert to_text(value) == text


def test_render(scope: Scope) -> None:
    text = "v${tasks.build.result.version} ok=${tasks.build.result.ok} $${env.NAME} ${env.NAME}"
    assert render(text, scope) == "v1.2 ok=true ${env.NAME} world"
    assert render("${tasks.list.result}|${item}", scope) == '[1,2,3]|{"id":7,"tags":["x","y"]}'
    assert render("${tasks.broken.result}", scope) == ""


def test_render_value_typed_passthrough(scope: Scope) -> None:
    assert render_value("${tasks.list.result}", scope) == [1, 2, 3]
    assert render_value("${tasks.build.exit_code}", scope) == 0
    assert render_value("${ item.id }", scope) == 7
    assert render_value(" ${tasks.list.result}", scope) == " [1,2,3]"
    assert render_value("n=${item.id}", scope) == "n=7"


def test_render_value_recurses(scope: Scope) -> None:
    value = {
        "items": "${tasks.list.result}",
        "k-${input}": ["${env.NAME}", 3, None, {"deep": "${item.tags}"}],
        "flag": True,
        "lit": "$${env.NAME}",
    }
    assert render_value(value, scope) == {
        "items": [1, 2, 3],
        "k-report": ["world", 3, None, {"deep": ["x", "y"]}],
        "flag": True,
        "lit": "${env.NAME}",
    }


# --------------------------------------------------------------------------- shell

MARKER = "pwned"
HOSTILE = [
    '"; touch {marker}; echo "',
    "$(touch {marker})",
    "'$(touch {marker})'",
    "`touch {marker}`",
    "; touch {marker}",
    "a'b\"c",
    "'",
    '"',
    "\\",
    "ends with backslash\\",
    "back\\slash \\' \\\" \\$",
    "line1\nline2",
    "line1\ntouch {marker}\n",
    "*",
    "two  spaces and\ttab",
    "",
    "$HOME ${HOME} $$",
    "'\\''",
    "A=b",
    "if",
    "# not a comment",
    ")",
    "<<EOF",
]
PRINTF_CONTEXTS = [
    ("printf '[%s]\\n' ${x}", "[V]\n"),
    ("printf '[%s]\\n' '${x}'", "[V]\n"),
    ("printf '[%s]\\n' \"${x}\"", "[V]\n"),
    ("printf '%s|' \"a ${x} b\" '${x}' ${x}", "a V b|V|V|"),
    ("printf '[%s]\\n' pre${x}post", "[preVpost]\n"),
    ("printf '[%s]\\n' \"$(printf '%s.' \"${x}\")\"", "[V.]\n"),
    ("printf '[%s]\\n' \"$(printf '%s.' ${x})\"", "[V.]\n"),
    ("printf '[%s]\\n' \"$(printf '%s.' '${x}')\"", "[V.]\n"),
    ("printf '[%s]\\n' ${x} # trailing ${x}", "[V]\n"),
]


def run_sh(command: str, cwd: Path) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["/bin/sh", "-c", command], capture_output=True, cwd=cwd, timeout=10)


def hostile_scope(tmp_path: Path, template: str) -> tuple[Scope, str, Path]:
    marker = tmp_path / MARKER
    (tmp_path / "decoy").write_text("")  # an unquoted * would expand to this
    value = template.replace("{marker}", str(marker))
    return Scope(env={}, variables={"x": value}), value, marker


@pytest.mark.parametrize("template", HOSTILE)
@pytest.mark.parametrize(("command", "expected"), PRINTF_CONTEXTS)
def test_render_shell_keeps_values_data(
    tmp_path: Path, template: str, command: str, expected: str
) -> None:
    scope, value, marker = hostile_scope(tmp_path, template)
    done = run_sh(render_shell(command, scope), tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.decode() == expected.replace("V", value)
    assert not marker.exists()


@pytest.mark.parametrize("template", [t for t in HOSTILE if "\\" not in t])
@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("echo ${x}", "V\n"),
        ("echo '${x}'", "V\n"),
        ('echo "${x}"', "V\n"),
        ("echo \"a ${x} b\" '${x}' ${x}", "a V b V V\n"),
    ],
)
def test_render_shell_echo_forms(
    tmp_path: Path, template: str, command: str, expected: str
) -> None:
    # dash's echo interprets backslashes itself, so those values are covered with printf above.
    scope, value, marker = hostile_scope(tmp_path, template)
    done = run_sh(render_shell(command, scope), tmp_path)
    assert done.stdout.decode() == expected.replace("V", value)
    assert not marker.exists()


def test_render_shell_quoting_shapes() -> None:
    scope = Scope(env={}, variables={"x": "it's", "e": ""})
    assert render_shell("echo ${x} ${e}", scope) == "echo 'it'\\''s' ''"
    assert render_shell("echo '${x}'", scope) == "echo 'it'\\''s'"
    assert render_shell('echo "${x} $${HOME} $$"', scope) == 'echo "it\'s ${HOME} $$"'


@pytest.mark.parametrize(
    ("command", "reason"),
    [
        ("cat <<EOF\n${x}\nEOF", "here-document"),
        ("cat <<'EOF'\nsay ${x}\nEOF", "here-document"),
        ("cat <<-EOF\n\t${x}\n\tEOF", "here-document"),
        ("cat <<EOF${x}\nEOF", "delimiter"),
        ("cat << ${x}\nEOF", "delimiter"),
        ("echo \\${x}", "backslash"),
        ('echo "a\\${x}"', "backslash"),
        ("echo `echo ${x}`", "`...`"),
        ('echo "`echo ${x}`"', "`...`"),
        ("echo $'${x}'", "$'...'"),
        ('echo "$${V:-${x}}"', '"${...}"'),
    ],
)
def test_render_shell_refuses_unsafe_places(command: str, reason: str) -> None:
    scope = Scope(env={}, variables={"x": "1"})
    with pytest.raises(ExpressionError) as caught:
        render_shell(command, scope)
    assert reason in str(caught.value)
    assert caught.value.position == command.index("${x}")


@pytest.mark.parametrize(
    ("value", "expected"),
    [("41", "42"), ("-3", "-2"), ("+7", "8"), ("0", "1"), ("abc", None), ("1.5", None)],
)
def test_render_shell_arithmetic_takes_plain_numbers_only(
    tmp_path: Path, value: str, expected: str | None
) -> None:
    scope = Scope(env={}, variables={"x": value})
    command = "echo $(( ${x} + 1 ))"
    if expected is None:
        with pytest.raises(ExpressionError, match=r"inside \$\(\(\.\.\.\)\)") as caught:
            render_shell(command, scope)
        assert caught.value.position == command.index("${x}")
        return
    assert run_sh(render_shell(command, scope), tmp_path).stdout.decode() == expected + "\n"


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        # A here-document ends at its delimiter; references after it are fine.
        ("cat <<EOF\nbody\nEOF\nprintf '[%s]\\n' ${x}", "body\n[V]\n"),
        ("cat <<A <<'B'\na\nA\nb\nB\nprintf '[%s]\\n' ${x}", "b\n[V]\n"),
        ("cat <<-EOF\n\tbody\n\tEOF\nprintf '[%s]\\n' \"${x}\"", "body\n[V]\n"),
        # "<<" inside $((...)) is a shift, not a here-document.
        ("printf '%s [%s]\\n' $((1<<2)) ${x}", "4 [V]\n"),
        # A comment drops the value, so a newline in it cannot end the comment.
        ("echo ok # ${x}", "ok\n"),
        ("echo ok \\\n# ${x}", "ok\n"),
        # '#' inside a word is not a comment.
        ("printf '[%s]\\n' a#${x}", "[a#V]\n"),
        ("printf '[%s]\\n' $(echo a)#${x}", "[a#V]\n"),
        # Shell syntax around references still works.
        ("X=${x}; printf '[%s]\\n' \"$X\" $${#X}", "[V]\n[LEN]\n"),
        ('printf \'[%s]\\n\' "$(echo "(${x})")" ${x}', "[(V)]\n[V]\n"),
    ],
)
def test_render_shell_contexts(tmp_path: Path, command: str, expected: str) -> None:
    scope, value, marker = hostile_scope(tmp_path, "\ntouch {marker} #x")
    done = run_sh(render_shell(command, scope), tmp_path)
    assert done.stdout.decode() == expected.replace("LEN", str(len(value))).replace("V", value)
    assert not marker.exists()


# --------------------------------------------------------------------------- conditions


def check(text: str, scope: Scope) -> bool:
    return parse_condition(text).evaluate(scope)


@pytest.mark.parametrize(
    ("env", "exit_code", "expected"),
    [("true", 0, True), ("false", 0, False), ("true", 1, False), ("TRUE", 0, False)],
)
def test_spec_example(env: str, exit_code: int, expected: bool) -> None:
    scope = Scope(env={"DEPLOY_ENABLED": env}, tasks={"build": TaskView(exit_code=exit_code)})
    condition = "${env.DEPLOY_ENABLED} == 'true' && ${tasks.build.exit_code} == 0"
    assert check(condition, scope) is expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # precedence: ! over comparison-free atoms, && over ||
        ("true || false && false", True),
        ("(true || false) && false", False),
        ("false && false || true", True),
        ("!false", True),
        ("!!true", True),
        ("!(1 == 1) || 2 == 2", True),
        ("!1 == 2", True),  # ! applies to the comparison: !(1 == 2)
        ("((true))", True),
        # numbers and numeric text
        ("${env.COUNT} == 10", True),
        ("${env.COUNT} == 10.0", True),
        ("'10.0' == 10", True),
        ("'10.0' == '10'", False),  # two texts compare as text
        ("'10' == '10'", True),
        ("${env.COUNT} > 9", True),
        ("'10' > '9'", True),  # both numeric: numeric order
        ("'b' > 'a'", True),
        ("'abc' < 'abd'", True),
        ("1.5 <= 1.5", True),
        ("-1 < 0", True),
        ("2 != 3", True),
        # booleans and null
        ("${tasks.build.result.ok} == 'true'", True),
        ("${tasks.build.result.ok} == true", True),
        ("true == 'true'", True),
        ("true == 1", False),
        ("${tasks.broken.result} == null", True),
        ("null == ''", True),
        # objects compare by their JSON text
        ("${tasks.list.result} == '[1,2,3]'", True),
        # strings: escapes and interpolation
        ("'it\\'s' == \"it's\"", True),
        ("'${env.DEPLOY_ENABLED}' == 'true'", True),
        ("\"v${tasks.build.result.version}-${env.NAME}\" == 'v1.2-world'", True),
        ("${tasks.health-check.status} == 'succeeded'", True),
        ("${item.tags.0} == 'x'", True),
    ],
)
def test_condition_values(scope: Scope, text: str, expected: bool) -> None:
    assert check(text, scope) is expected


def test_condition_string_escape(scope: Scope) -> None:
    # "$${" (and a backslash-escaped "\\${") in a string literal is a literal "${".
    condition = parse_condition("'$${env.NAME}' == \"\\${env.NAME}\"")
    # "$${" (and a backslash-escaped "\${") in a string literal is a literal "${".
    assert condition.evaluate(scope) is True


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("${env.DEPLOY_ENABLED}", True),
        ("${env.NOT_SET}", False),
        ("${tasks.list.result}", True),
        ("${tasks.broken.exit_code}", True),
        ("${tasks.build.exit_code}", False),
        ("'no'", False),
        ("'yes'", True),
        ("null", False),
        ("0", False),
        ("0.5", True),
    ],
)
def test_single_value_conditions(scope: Scope, text: str, expected: bool) -> None:
    assert check(text, scope) is expected


@pytest.mark.parametrize(
    "hostile",
    [
        "' || 'a'=='a",
        '" || "a"=="a',
        "x') || (true",
        "${env.DEPLOY_ENABLED}",
        "true",
    ],
)
def test_condition_values_stay_data(hostile: str) -> None:
    scope = Scope(env={"X": hostile, "DEPLOY_ENABLED": "true"})
    assert check("${env.X} == 'safe'", scope) is False
    assert check("'${env.X}' == 'safe'", scope) is False
    assert check("\"${env.X}\" == 'safe'", scope) is False
    assert check("${env.X} == ${env.X}", scope) is True
    assert check("'[${env.X}]' == '[' ", scope) is False


def test_condition_short_circuits(scope: Scope) -> None:
    assert check("false && ${tasks.missing.result}", scope) is False
    assert check("true || ${tasks.missing.result}", scope) is True
    with pytest.raises(UnresolvedReference, match="unknown task 'missing'"):
        check("true && ${tasks.missing.result}", scope)


def test_condition_references_and_repr() -> None:
    condition = parse_condition("${tasks.a.status} == 'ok ${env.X}' || ${item}")
    assert isinstance(condition, Condition)
    assert [r.text for r in condition.references] == ["${tasks.a.status}", "${env.X}", "${item}"]
    assert all(isinstance(r, Reference) for r in condition.references)
    assert condition.source in repr(condition)


@pytest.mark.parametrize(
    ("text", "fragment", "position"),
    [
        ("", "empty condition", 0),
        ("   ", "empty condition", 0),
        ("deploy", "unknown word 'deploy'", 0),
        ("==", "expected a value", 0),
        ("1 ==", "expected a value, found the end", 4),
        ("(1 == 1", "expected ')'", 7),
        ("1 == 1)", "unexpected ')'", 6),
        ("1 = 1", "use '=='", 2),
        ("true | false", "use '||'", 5),
        ("true & false", "use '&&'", 5),
        ("'abc", "unterminated string", 0),
        ("'abc\\'", "unterminated string", 0),
        ("${env.X", "unclosed", 0),
        ("'${env.X' == '}'", 'invalid character "\'"', 8),
        ("1 == 2 == 3", "unexpected '=='", 7),
        ("$x == 1", "${...}", 0),
        ("true false", "unexpected value false", 5),
        ("!", "expected a value", 1),
        ("${tasks.x} == 1", "missing field", 0),
        ("1 == #", "unexpected '#'", 5),
    ],
)
def test_condition_parse_errors(text: str, fragment: str, position: int) -> None:
    with pytest.raises(ExpressionError) as caught:
        parse_condition(text)
    assert fragment in str(caught.value)
    assert caught.value.position == position


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, False),
        (False, False),
        (0, False),
        (0.0, False),
        ("", False),
        ("false", False),
        ("FALSE", False),
        ("0", False),
        ("No", False),
        ("off", False),
        (" false\n", False),
        ([], False),
        ({}, False),
        (True, True),
        (1, True),
        (-1, True),
        ("true", True),
        ("yes", True),
        ("0.0", True),
        ("anything", True),
        ([0], True),
        ({"a": None}, True),
    ],
)
def test_truthy(value: Any, expected: bool) -> None:
    assert truthy(value) is expected


def test_imports_stay_light() -> None:
    code = (
        "import sys, jupyter_workflows.definition.templates; "
        "print(sorted(m for m in ('pydantic', 'yaml', 'duckdb', 'rich', 'click', 'shlex')"
        " if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.stdout.strip() == "[]", done.stderr
