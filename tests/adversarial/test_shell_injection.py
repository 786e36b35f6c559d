"""A templated value never becomes shell code, in sh (dash here) and bash (issue 13).

Every hostile value of the corpus goes into every shell context, and each rendered command
runs for real under both shells: nothing may run (no PWNED file, ever), and each value either
arrives intact as data or the command is refused before anything runs.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from jupyter_workflows.definition.shell_quoting import render_shell
from jupyter_workflows.definition.templates import Scope
from jupyter_workflows.errors import ExpressionError
from jupyter_workflows.execution.states import State
from tests.conftest import cli, make_workflow, write_workflow

SHELLS = ["/bin/sh", shutil.which("bash") or "/bin/bash"]
PWNED = "PWNED"

HOSTILE = {
    "command substitution": "$(touch PWNED)",
    "backquotes": "`touch PWNED`",
    "semicolon": ";touch PWNED",
    "and-and": "&& touch PWNED",
    "pipe": "| touch PWNED",
    "redirection": ">PWNED",
    "subscript": "a[$(touch PWNED)]",
    "subscript expression": "x[$(touch PWNED)]+1",
    "subscript in backquotes": "a[`touch PWNED`]",
    "single-quoted substitution": "'$(touch PWNED)'",
    "double-quoted substitution": '"$(touch PWNED)"',
    "quote breakout": "'; touch PWNED; '",
    "double quote breakout": '"; touch PWNED; "',
    "newline and command": "x\ntouch PWNED\n",
    "carriage return": "x\r;touch PWNED",
    "arithmetic opener": "$((",
    "arithmetic with substitution": "$((1+$(touch PWNED)))",
    "unicode single quotes": "\u2018$(touch PWNED)\u2019",
    "unicode double quotes": "\u201c;touch PWNED\u201d",
    "NUL": "a\0b;touch PWNED",
    "very long": "A" * 100_000 + "$(touch PWNED)",
    "glob star": "*",
    "glob class": "[a-zP]*",
    "question mark": "?WNED",
    "option -e": "-e",
    "option --help": "--help",
    "IFS": "${IFS}touch${IFS}PWNED",
    "IFS in substitution": "$(IFS=_;c=touch_PWNED;$c)",
    "heredoc marker": "EOF\ntouch PWNED\nEOF",
    "heredoc operator": "<<EOF",
    "brace": "}$(touch PWNED)",
    "backslash": "\\",
    "backslash quote": "\\'$(touch PWNED)\\'",
    "comment": "# $(touch PWNED)",
    "tilde": "~root",
    "history": "!!",
    "assignment": "PATH=.",
    "keyword": "if",
    "empty": "",
    "name of a variable": "PWD",
    "percent format": "%s%n",
    "command line": "eval touch PWNED",
}

# (name, template, expected stdout for value V or None when the context cannot print it)
Expect = Callable[[str], str] | None
BRACKETED: Expect = lambda v: f"[{v}]\n"  # noqa: E731
CONTEXTS: list[tuple[str, str, Expect]] = [
    ("bare", "printf '[%s]\\n' ${x}", BRACKETED),
    ("single quotes", "printf '[%s]\\n' '${x}'", BRACKETED),
    ("double quotes", "printf '[%s]\\n' \"${x}\"", BRACKETED),
    ("inside a word", "printf '[%s]\\n' a${x}b", lambda v: f"[a{v}b]\n"),
    ("$(...)", "printf '[%s]\\n' \"$(printf '%s' ${x})\"", lambda v: f"[{v.rstrip(chr(10))}]\n"),
    ('"$(...)"', 'printf \'[%s]\\n\' "$(printf %s "${x}")"', lambda v: f"[{v.rstrip(chr(10))}]\n"),
    ("assignment", "v=${x}; printf '[%s]\\n' \"$v\"", BRACKETED),
    ("default value", "printf '[%s]\\n' $${UNSET_X:-${x}}", BRACKETED),
    ("here-string", "cat <<< ${x}", lambda v: f"{v}\n"),
    ("for list", "for v in ${x}; do printf '[%s]\\n' \"$v\"; done", BRACKETED),
    ("case", "case ${x} in *) printf '[%s]\\n' ${x};; esac", BRACKETED),
    ("comment", "printf '[ok]\\n' # ${x}", lambda v: "[ok]\n"),
    (
        "after a here-document",
        "cat <<EOF\nbody\nEOF\nprintf '[%s]\\n' ${x}",
        lambda v: f"body\n[{v}]\n",
    ),
    ("positional to sh -c", 'sh -c \'printf "[%s]\\n" "$1"\' sh ${x}', BRACKETED),
    ("arithmetic", "printf '[%s]\\n' $(( ${x} + 1 ))", None),
    ("arithmetic via assignment", "n=${x}; printf '[%s]\\n' $((n + 1))", None),
    ("arithmetic via $n", "n=${x}; printf '[%s]\\n' $(($n + 1))", None),
    ("arithmetic via read", "read n <<< ${x}; printf '[%s]\\n' $((n + 1))", None),
    ("arithmetic via set --", "set -- ${x}; printf '[%s]\\n' $(($1 + 1))", None),
    ("arithmetic via function", "f() { printf '[%s]\\n' $(($1 + 1)); }; f ${x}", None),
    ("arithmetic in sh -c positional", "bash -c 'printf \"[%s]\\n\" $(($1 + 1))' _ ${x}", None),
    ("arithmetic via env of bash -c", "N=${x} bash -c 'printf \"[%s]\\n\" $((N + 1))'", None),
    ("arithmetic via eval", "eval \"n=${x}\"; printf '[%s]\\n' $((n + 1))", None),
    ("$[...]", "printf '[%s]\\n' $[ ${x} + 1 ]", None),
    ("((...))", "(( ${x} > 0 )) && printf '[pos]\\n'", None),
    ("[[ -eq ]]", "[[ ${x} -eq 1 ]] && printf '[one]\\n'", None),
    ("[[ -eq ]] via assignment", "n=\"${x}\"; [[ $n -gt 0 ]] && printf '[pos]\\n'", None),
    ("declare -i", "declare -i v=${x}; printf '[%s]\\n' \"$v\"", None),
    ("let", "let v=${x}+1; printf '[%s]\\n' \"$v\"", None),
    ("array subscript", "a=(p q r); printf '[%s]\\n' \"$${a[${x}]}\"", None),
    ("array assignment", "a=(p q r); a[${x}]=s; printf '[%s]\\n' \"$${a[*]}\"", None),
    ("substring offset", "s=abcdef; printf '[%s]\\n' \"$${s:${x}}\"", None),
    ("printf -v", "printf -v ${x} %s 1; printf '[%s]\\n' ${x}", BRACKETED),
    ("read name", "read ${x} <<< 1; printf '[%s]\\n' ${x}", BRACKETED),
    ("unset", "unset ${x}; printf '[%s]\\n' ${x}", BRACKETED),
    ("[[ -v ]]", "[[ -v ${x} ]]; printf '[%s]\\n' ${x}", BRACKETED),
    ("${!n}", 'n=${x}; : "$${!n}"; printf \'[%s]\\n\' "$n"', BRACKETED),
    ("declare -n", "declare -n r=${x}; printf '[%s]\\n' ${x}", BRACKETED),
    ("sh -c", "sh -c \"printf '[%s]\\n' ${x}\"", BRACKETED),
    ("bash -c", "bash -c 'printf \"[%s]\\n\" ${x}'", BRACKETED),
    ("eval", "eval \"printf '[%s]\\n' ${x}\"", BRACKETED),
    ("eval bare", "eval printf \"'[%s]\\n'\" ${x}", BRACKETED),
    ("eval of a variable", "v=${x}; eval \"printf '[%s]\\n' $v\"", BRACKETED),
    ("trap", "trap \"printf '[%s]\\n' ${x}\" EXIT", BRACKETED),
    ("shell reading a pipe", "printf '%s\\n' \"printf '[%s]\\n' ${x}\" | sh", BRACKETED),
    (
        "xargs -I into sh -c",
        "printf '%s\\n' ${x} | xargs -I{} sh -c 'printf \"[%s]\\n\" {}'",
        lambda v: f"[{v}]\n" if v else "",
    ),  # fmt: skip
    ("su -c", "su nobody -c \"printf '[%s]\\n' ${x}\"", BRACKETED),
    ("ssh", "ssh host printf \"'[%s]\\n'\" ${x}", BRACKETED),
    ("nested in $(...)", "printf '%s' \"$(sh -c \"printf '[%s]\\n' ${x}\")\"", lambda v: f"[{v}]"),
    ("here-document", "cat <<EOF\n${x}\nEOF", None),
    ("quoted here-document", "cat <<'EOF'\n${x}\nEOF", None),
    ("backquotes", "printf '[%s]\\n' `printf %s ${x}`", None),
    ("$'...'", "printf '[%s]\\n' $'${x}'", None),
    ('"${X:-...}"', "printf '[%s]\\n' \"$${UNSET_X:-${x}}\"", None),
    ("PS4 with xtrace", "PS4=${x}; set -x; true", lambda v: ""),
    ("unquoted command name", "n=${x}; $n", lambda v: ""),
    ("target of >&", "printf '' >&1${x}", lambda v: ""),
    ("target of >& after <()", "printf '' 2>&1<()${x}", lambda v: ""),
    ("process substitution", "cat <(printf '[%s]\\n' ${x})", BRACKETED),
    ("test -eq", "[ ${x} -eq 1 ] && echo one || echo other", None),
    ("coproc eval", "coproc eval \"printf '[%s]\\n' ${x}\" >&2", lambda v: ""),
]
# Contexts only bash understands: under dash they fail on syntax, so output is not compared.
BASH_ONLY = {
    "here-string", "arithmetic via read", "((...))", "[[ -eq ]]", "[[ -eq ]] via assignment",
    "declare -i", "let", "array subscript", "array assignment", "substring offset", "printf -v",
    "read name", "[[ -v ]]", "${!n}", "declare -n", "$[...]", "$'...'", "process substitution",
}  # fmt: skip


@pytest.fixture
def fake_bin(tmp_path: Path) -> Path:
    """``su`` and ``ssh`` that do what the real ones do with a command: run it with sh -c."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    scripts = {
        # ssh joins its arguments after the host with spaces, as the remote shell gets them.
        "ssh": '#!/bin/sh\nshift\nexec sh -c "$*"\n',
        "su": '#!/bin/sh\nwhile [ $# -gt 0 ]; do\n  [ "$1" = -c ] && exec sh -c "$2"\n'
        "  shift\ndone\n",
    }
    for name, script in scripts.items():
        (bin_dir / name).write_text(script)
        (bin_dir / name).chmod(0o755)
    return bin_dir


def run_case(shell: str, template: str, value: str, cwd: Path, fake_bin: Path) -> str | None:
    """Render and run; None when refused (and then nothing ran), else stdout."""
    try:
        command = render_shell(template, Scope(env={}, variables={"x": value}))
    except ExpressionError:
        return None
    env = {"PATH": f"{fake_bin}:/usr/bin:/bin", "HOME": str(cwd)}
    done = subprocess.run(
        [shell, "-c", command], cwd=cwd, capture_output=True, timeout=20, env=env, input=b""
    )
    return done.stdout.decode("utf-8", "surrogateescape")


@pytest.mark.parametrize("shell", SHELLS, ids=["sh", "bash"])
@pytest.mark.parametrize(("context", "template", "expect"), CONTEXTS, ids=[c[0] for c in CONTEXTS])
def test_no_value_of_the_corpus_ever_runs(
    tmp_path: Path, fake_bin: Path, shell: str, context: str, template: str, expect: Expect
) -> None:
    for label, value in HOSTILE.items():
        work = tmp_path / "work"
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir()
        (work / "decoy").write_text("")  # something for an unquoted glob to expand to
        out = run_case(shell, template, value, work, fake_bin)
        assert not (work / PWNED).exists(), f"{label!r} ran as code in {context} ({shell})"
        if out is None:
            continue  # refused before anything ran
        assert expect is not None, f"{label!r} in {context} ran, but nothing shows it intact"
        if context in BASH_ONLY and "bash" not in shell:
            continue  # dash stops at the syntax; no PWNED is all there is to see
        assert out == expect(value), f"{label!r} did not arrive intact in {context}"


# --------------------------------------------------------------------------- legitimate uses

ALPHABET = "abcdefghijklmnopqrstuvwxyz"
# (name, template, expected stdout for the number n, whether sh runs it too)
POS = lambda n: "pos\n" if n > 0 else "other\n"  # noqa: E731
NEXT = lambda n: f"[{n + 1}]\n"  # noqa: E731
NUMBER_CONTEXTS: list[tuple[str, str, Callable[[int], str], bool]] = [
    ("$((...))", "printf '[%s]\\n' $(( ${x} + 1 ))", NEXT, True),
    ("via assignment", "n=${x}; printf '[%s]\\n' $((n + 1))", NEXT, True),
    ("via $n", "n=${x}; printf '[%s]\\n' $(($n + 1))", NEXT, True),
    ("via set --", "set -- ${x}; printf '[%s]\\n' $(($1 + 1))", NEXT, True),
    ("sh -c positional", "sh -c 'printf \"[%s]\\n\" $(($1 + 1))' _ ${x}", NEXT, True),
    ("[ -gt ]", "[ ${x} -gt 0 ] && echo pos || echo other", POS, True),
    ("((...))", "(( ${x} > 0 )) && echo pos || echo other", POS, False),
    ("[[ -gt ]]", "n=${x}; [[ $n -gt 0 ]] && echo pos || echo other", POS, False),
    ("declare -i", "declare -i v=${x}+1; echo $v", lambda n: f"{n + 1}\n", False),
    ("let", "let v=${x}+1; echo $v", lambda n: f"{n + 1}\n", False),
    ("subscript", f"a=({' '.join(ALPHABET)}); echo $${{a[${{x}}]}}",
     lambda n: ALPHABET[n] + "\n" if -26 <= n < 26 else "\n", False),
    ("offset", f"s={ALPHABET}; echo $${{s:${{x}}:2}}", lambda n: ALPHABET[n:][:2] + "\n", False),
]  # fmt: skip


@pytest.mark.parametrize("shell", SHELLS, ids=["sh", "bash"])
@pytest.mark.parametrize(
    ("context", "template", "expect", "posix"), NUMBER_CONTEXTS, ids=[c[0] for c in NUMBER_CONTEXTS]
)
def test_plain_numbers_still_work_in_arithmetic(
    tmp_path: Path, fake_bin: Path, shell: str, context: str, template: str,
    expect: Callable[[int], str], posix: bool,
) -> None:  # fmt: skip
    if not posix and "bash" not in shell:
        pytest.skip("bash syntax")
    for value in ("41", "-3", "+7", "0"):
        out = run_case(shell, template, value, tmp_path, fake_bin)
        assert out == expect(int(value)), f"{value} in {context}"


INERT_VALUES = ["report-2024.csv", "a/b:c@d%e+f,g=h", "-e", "", "Fran_42"]
INERT_CONTEXTS = [c for c in CONTEXTS if c[0] in (
    "sh -c", "bash -c", "eval", "eval bare", "eval of a variable", "trap", "shell reading a pipe",
    "su -c", "ssh", "nested in $(...)",
)]  # fmt: skip


@pytest.mark.parametrize("shell", SHELLS, ids=["sh", "bash"])
@pytest.mark.parametrize(
    ("context", "template", "expect"), INERT_CONTEXTS, ids=[c[0] for c in INERT_CONTEXTS]
)
def test_plain_values_still_work_in_nested_shells(
    tmp_path: Path, fake_bin: Path, shell: str, context: str, template: str, expect: Expect
) -> None:  # fmt: skip
    assert expect is not None
    for value in INERT_VALUES:
        assert run_case(shell, template, value, tmp_path, fake_bin) == expect(value), value


def test_plain_names_still_work_as_names(tmp_path: Path, fake_bin: Path) -> None:
    template = 'n=${x}; printf -v ${x} %s hello; read ${x}_2 <<< world; echo "$${!n}" "$${n}_2"'
    assert run_case(SHELLS[1], template, "Fran_42", tmp_path, fake_bin) == "hello Fran_42_2\n"
    template = "read ${x}_2 <<< world; echo $${Fran_42_2}"
    assert run_case(SHELLS[1], template, "Fran_42", tmp_path, fake_bin) == "world\n"


def test_exact_rendering() -> None:
    scope = Scope(env={}, variables={"x": "-3", "s": "it's"})
    # A signed number in arithmetic is parenthesised: $((1-(-3))), never $((1--3)).
    assert render_shell("echo $((1-${x})) $${a[${x}]}", scope) == "echo $((1-(-3))) ${a[(-3)]}"
    assert render_shell("n=${x}; echo $((n+1))", scope) == "n='-3'; echo $((n+1))"
    assert render_shell("sh -c 'echo ${x}' # ${s}", scope) == "sh -c 'echo -3' # "


def test_a_command_without_references_is_rendered_as_written() -> None:
    """Why the shell task may skip the analysis for an ASCII command with no ``${`` and no
    untrusted environment value: the analysis returns it unchanged."""
    scope = Scope(env={}, variables={})
    plain = [
        "true",
        "",
        "echo \"$HOME\" 'a b' `date` $(pwd) $((1+2)) a[$i] $$ $# '\\'",
        "cat <<EOF\n$x\nEOF",
        *(f"echo {value}" for value in HOSTILE.values()),
    ]
    for command in plain:
        if "${" not in command and command.isascii():
            assert render_shell(command, scope) == command


# --------------------------------------------------------------------------- through the engine


def shell_task(task_id: str, command: str, **fields: object) -> dict[str, object]:
    return {"id": task_id, "type": "shell", "command": command, **fields}


def test_a_refused_task_says_which_task_reference_and_place(run_workflow, project: Path) -> None:
    hostile = "a[$(touch PWNED)]"
    execution = run_workflow(
        make_workflow(
            shell_task("produce", f"printf '%s' '{hostile}'"),
            # The arithmetic pattern the README used to recommend.
            shell_task(
                "count",
                "n=${tasks.produce.result}; echo $((n + 1))",
                shell="bash",
                depends_on=["produce"],
            ),  # fmt: skip
        )
    )
    count = execution.tasks["count"]
    assert execution.tasks["produce"].result == hostile
    assert count.status is State.FAILED and count.exit_code is None  # nothing was started
    assert count.error is not None
    for part in ("task 'count', field 'command'", "${tasks.produce.result}", "not a plain whole",
                 "inside $((...))", "through variable 'n'", "like 42"):  # fmt: skip
        assert part in count.error, part
    assert not (project / PWNED).exists()


def test_environment_values_from_templates_are_checked_where_evaluated(
    run_workflow, project: Path
) -> None:
    def workflow(value: str) -> object:
        return make_workflow(
            shell_task("produce", f"printf '%s' '{value}'"),
            shell_task(
                "count",
                "echo $((N + 1))",
                shell="bash",
                depends_on=["produce"],
                environment={"N": "${tasks.produce.result}"},
            ),  # fmt: skip
        )

    refused = run_workflow(workflow("a[$(touch PWNED)]")).tasks["count"]
    assert refused.status is State.FAILED and refused.exit_code is None
    assert "environment variable $N" in (refused.error or "")
    assert not (project / PWNED).exists()
    assert run_workflow(workflow("41")).tasks["count"].result == 42


def test_references_need_a_posix_family_shell(run_workflow, project: Path) -> None:
    python = shutil.which("python3") or "python3"
    execution = run_workflow(
        make_workflow(
            shell_task("plain", "print(6 * 7)", shell=python),
            shell_task("templated", "print('${env.HOME}')", shell=python),
        )
    )
    assert execution.tasks["plain"].result == 42
    templated = execution.tasks["templated"]
    assert templated.status is State.FAILED and "sh-family" in (templated.error or "")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux's argument limit")
def test_a_command_too_long_to_run_is_refused_before_starting() -> None:
    scope = Scope(env={}, variables={"x": "A" * 200_000})
    with pytest.raises(ExpressionError, match="more than the 131072 bytes"):
        render_shell("printf %s ${x}", scope)
    assert len(render_shell("printf %s ${x}", Scope(env={}, variables={"x": "A" * 100_000})))


# --------------------------------------------------------------------------- --dry-run


def test_dry_run_prints_byte_for_byte_what_the_shell_gets(project: Path) -> None:
    # The task's shell is a recorder: it writes the command it gets, then runs it with sh.
    recorder = project / "bin" / "sh"
    recorder.parent.mkdir()
    recorder.write_text('#!/bin/sh\nprintf %s "$2" > "$RECORD"\nexec /bin/sh -c "$2"\n')
    recorder.chmod(0o755)
    value = 'it\'s "quoted"\n$(touch PWNED)\t\u2018x\u2019 \x1b[31m'
    command = "printf '%s' ${env.V} \"${env.V}\" '${env.V}' > out # ${env.V}"
    write_workflow(project, {"name": "w", "tasks": [shell_task("t", command, shell=str(recorder))]})
    env = {"V": value, "RECORD": str(project / "record")}
    plan = cli(project, "run", "wf.json", "--dry-run", env=env)
    assert plan.returncode == 0, plan.stderr
    assert "\x1b" not in plan.stdout  # control characters are escaped, never printed
    prefix = f"command for {recorder} -c: "
    [line] = [line.strip() for line in plan.stdout.splitlines() if prefix in line]
    planned = json.loads(line.removeprefix(prefix))
    assert not (project / "record").exists()
    done = cli(project, "run", "wf.json", env=env)
    assert done.returncode == 0, done.stderr
    assert (project / "record").read_text() == planned
    assert (project / "out").read_text() == value * 3
    assert not (project / PWNED).exists()


def test_dry_run_says_what_would_be_refused_and_what_values_must_be(project: Path) -> None:
    write_workflow(project, {"name": "w", "tasks": [
        shell_task("a", "echo 5"),
        shell_task("b", "n=${tasks.a.result}; echo $((n + 1))", depends_on=["a"]),
        shell_task("c", 'sh -c "echo ${env.EVIL}"'),
        shell_task("d", "echo `date` ${env.EVIL}"),
    ]})  # fmt: skip
    plan = cli(project, "run", "wf.json", "--dry-run", env={"EVIL": "$(touch PWNED)"})
    assert plan.returncode == 0, plan.stderr
    out = plan.stdout
    assert "${tasks.a.result} must be a plain whole number: it ends up inside $((...))" in out
    assert "REFUSED: ${env.EVIL} is not plain text" in out and "'sh -c'" in out
    assert "REFUSED: ${env.EVIL} cannot be used inside `...`" not in out  # it is after them
    assert "echo `date` '$(touch PWNED)'" in out
    assert not (project / PWNED).exists()


# --------------------------------------------------------------------------- the README


def readme_commands() -> list[str]:
    """Each command in the README's Expressions section, every reference in it made ``${x}``."""
    text = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = text[text.index("### Expressions") : text.index("### Scheduling")]
    spans = [s for s in re.findall(r"`([^`\n]+)`", section) if " " in s and "${" in s]
    return [re.sub(r"(?<!\$)\$\{[a-z][\w.-]*\}", "${x}", span) for span in spans]


def test_the_readme_examples_are_safe_as_written(tmp_path: Path, fake_bin: Path) -> None:
    commands = readme_commands()
    assert "echo $(( ${x} + 1 ))" in commands and "n=${x}; echo $((n + 1))" in commands
    for command in commands:
        for shell in SHELLS:
            for value in HOSTILE.values():
                run_case(shell, command, value, tmp_path, fake_bin)
                assert not (tmp_path / PWNED).exists(), (command, value, shell)
    for command in ("echo $(( ${x} + 1 ))", "n=${x}; echo $((n + 1))"):
        assert run_case(SHELLS[0], command, "41", tmp_path, fake_bin) == "42\n"


@pytest.mark.parametrize(
    ("template", "option", "code"),
    [
        ("sh ${o} ${x}", "-c", "touch PWNED"),
        ("bash ${o} ${x}", "-c", "touch PWNED"),
        ("printf ${o} ${x} y", "-v", "a[$(touch PWNED)]"),
        ("trap ${o} ${x} EXIT", "--", "touch PWNED"),
        ("su ${o} ${x}", "-c", "touch PWNED"),
        ("ssh ${o} host", "-oProxyCommand=touch PWNED", ""),
        ("env ${o} ${x}", "-S", "sh -c 'touch PWNED'"),
    ],
)
def test_a_value_read_as_an_option_cannot_make_another_one_code(
    tmp_path: Path, fake_bin: Path, template: str, option: str, code: str
) -> None:
    for shell in SHELLS:
        scope = Scope(env={}, variables={"o": option, "x": code})
        with pytest.raises(ExpressionError, match="reads its options"):
            render_shell(template, scope)
        # The same words written by the template's author are what the author meant.
        plain = render_shell(template, Scope(env={}, variables={"o": "plain", "x": "a.b"}))
        subprocess.run([shell, "-c", plain], cwd=tmp_path, capture_output=True, timeout=20,
                       env={"PATH": f"{fake_bin}:/usr/bin:/bin"}, input=b"")  # fmt: skip
        assert not (tmp_path / PWNED).exists()
