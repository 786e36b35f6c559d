"""Render a shell command so that no templated value can become shell code, in sh or bash.

``render_shell`` lexes the command with a mark in place of each ``${...}`` reference
(``shell_lexer``), works out where each value goes and what it must be there
(``shell_commands``, ``shell_flow``), checks every value, and only then fills them in, each
escaped for the quoting it lands in. The analysis never sees a value, so it holds for all.

What a value must be, by where it lands:

- a shell word (bare, ``'...'``, ``"..."``, inside ``$(...)``): anything; it stays one
  literal word (a bare value is single-quoted; inside quotes it is escaped for them). As a
  command name it picks the program, and as an argument starting with ``-`` it is an option
  to it: that is what the command says, not shell syntax;
- shell arithmetic, directly or through a variable assigned from it (``$((n+1))``,
  ``((...))``, ``let``, ``[[ n -eq 1 ]]``, ``test n -eq 1`` (ksh, zsh), ``declare -i``,
  array subscripts, ``${s:offset}``): a plain whole number, ``[+-]?(0|[1-9][0-9]*)``. bash
  evaluates any other text there as an expression, and ``a[$(cmd)]`` in it runs ``cmd``. No
  fractions (shell arithmetic has none), no hex, no leading zeros (``010`` is octal 8);
- a variable name (``read``, ``printf -v``, ``unset``, ``declare``, ``[[ -v ]]``, ``${!n}``,
  ``declare -n``): ``[A-Za-z_][A-Za-z0-9_]*``, for the same reason;
- text a shell parses again (``eval``, ``sh -c``/``bash -c`` scripts, ``su -c``,
  ``ssh host cmd``, ``trap``, a shell reading a pipe, the target of ``>&``, a variable
  unquoted as a command name): only ``[A-Za-z0-9_./:=@%+,-]``, which no shell reads as
  anything but plain word characters, never split by the default IFS;
- a comment: dropped (a newline in it would end the comment).

Refused whatever the value: inside a here-document, right after a backslash or a ``$``,
inside backquotes or bash's ``$'...'``, inside a double-quoted ``"${X:-...}"``, and after any
text sh and bash would read differently (``$[...]``, quotes inside arithmetic, ...).

Every shell is analysed as bash (``/bin/sh`` is bash on some systems), with the places where
dash, ksh or zsh evaluate more on top. A value's path is followed through variables,
positional parameters, functions defined in the command and nested ``sh -c``/``eval``
scripts; a variable set by ``read``, ``mapfile`` or ``getopts`` and evaluated makes every
value in the command meet that rule. Data that leaves the shell through files or pipes into
other programs is not followed.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass

from ..errors import ExpressionError
from .shell_flow import Facts, Site
from .shell_lexer import Lexer
from .shell_words import (
    ARITH,
    COMMENT,
    DOUBLE,
    IDENT_RE,
    INERT,
    MARK_BASE,
    MARK_END,
    NAME,
    NEVER,
    NUMBER,
    OPERAND,
    SINGLE,
    mark,
)
from .templates import Reference, Scope, UnresolvedReference, split_template, to_text

__all__ = ["PlannedCommand", "plan_shell", "render_shell"]

_NAME_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_")
_INERT_CHARS = _NAME_CHARS | frozenset("./:=@%+,-")
MAX_ARGUMENT = 32 * 4096  # Linux's MAX_ARG_STRLEN: the longest single argv string, NUL included
NUMBER_RE = re.compile(r"[-+]?(0|[1-9][0-9]*)")
INERT_RE = re.compile(r"[A-Za-z0-9_./:=@%+,-]*")
_DOUBLE_SPECIAL_RE = re.compile(r'[\\"$`]')  # what a backslash must protect inside "..."
_RULES = {NUMBER: "a plain whole number", NAME: "a plain name", OPERAND: "no option (-x)"}
_HINTS = {
    NUMBER: "only a plain whole number (like 42 or -7) may reach shell arithmetic, where bash "
    "evaluates any other text as an expression that can run commands",
    NAME: "only a plain name (letters, digits and _) may be used as a variable name, where "
    "bash evaluates a [subscript] in it and can run commands",
    OPERAND: "a value there must not start with - or +, or the program reads it as an option "
    "(such as -c, which runs the next word as commands)",
    INERT: "only letters, digits and _ . / : = @ % + , - may be parsed again as shell code; "
    "pass the value as an argument instead (sh -c 'echo \"$1\"' sh ${...}) or through the "
    "task's environment",
}


@dataclass
class _Analysis:
    parts: list[str | Reference]
    references: list[Reference]
    facts: Facts


def _analyse(command: str, env_names: frozenset[str] = frozenset()) -> _Analysis:
    parts = split_template(command)
    references = [part for part in parts if isinstance(part, Reference)]
    if len(references) >= MARK_END - MARK_BASE:
        raise ExpressionError("too many references in one shell command", command)
    pieces, index = [], 0
    for part in parts:
        if isinstance(part, Reference):
            pieces.append(mark(index))
            index += 1
        elif any(MARK_BASE <= ord(char) < MARK_END for char in part):
            raise ExpressionError(
                "a shell command with references cannot contain characters from "
                "U+F0000-U+FFFFD (private use)",
                command,
            )
        else:
            pieces.append(part)
    facts = Facts(env_names=env_names)
    Lexer("".join(pieces), facts).run()
    facts.solve()
    return _Analysis(parts, references, facts)


def _problem(value: str, kind: str, secret: bool) -> str | None:
    """How ``value`` breaks the rule for ``kind``, without showing the value; None if not."""
    if kind == NUMBER and NUMBER_RE.fullmatch(value):
        return None
    if kind == NAME and IDENT_RE.fullmatch(value):
        return None
    if kind == INERT and INERT_RE.fullmatch(value):
        return None
    if kind == NEVER:
        return "cannot be used here"
    if kind == OPERAND:
        return None if not value.startswith(("-", "+")) else f"starts with {value[0]!r}"
    if value == "":
        return "is empty"
    if kind == NUMBER and re.fullmatch(r"[-+]?0[0-9]+", value):
        return "has a leading 0 (sh and bash read 010 as octal 8)"
    if kind == NUMBER and re.fullmatch(r"[-+]?[0-9]*\.[0-9]+", value):
        return "is not a whole number (shell arithmetic has no fractions)"
    fits = {NUMBER: "0123456789+-", NAME: _NAME_CHARS, INERT: _INERT_CHARS}[kind]
    bad = next((c for c in value if c not in fits), None)
    if kind == NAME and bad is None:
        bad = value[0]  # a name does not start with a digit
    what = {NUMBER: "a plain whole number", NAME: "a plain name", INERT: "plain text"}[kind]
    shown = "" if secret or bad is None else f" (it contains {bad!r})"
    return f"is not {what}{shown}"


def _check(value: str, ref: Reference, site: Site | None, needs: dict[str, str]) -> str | None:
    """Why ``value`` cannot go where ``ref`` is, or None."""
    if site is None:
        return f"{ref.text} cannot be used here: its place in the command could not be followed"
    if site.refused:
        return f"{ref.text} cannot be used {site.refused}"
    if site.quote == COMMENT:
        return None
    if "\0" in value:
        return f"{ref.text} contains a NUL character, which no command line can carry"
    try:
        os.fsencode(value)
    except UnicodeEncodeError:
        return f"{ref.text} contains characters that cannot be passed to a process"
    if NEVER in needs:
        return f"{ref.text} cannot be used {needs[NEVER]}"
    for kind, why in needs.items():
        problem = _problem(value, kind, ref.scope == "secret")
        if problem:
            return f"{ref.text} {problem}, but it ends up {why}: {_HINTS[kind]}"
    return None


def _escape(value: str, site: Site) -> str:
    if site.quote == COMMENT:
        return ""  # a value in a comment is dropped: a newline in it would end the comment
    if site.quote == ARITH:  # checked: a plain number; a sign is kept apart from operators
        return f"({value})" if value[0] in "+-" else value
    if site.quote == SINGLE:
        return value.replace("'", "'\\''")
    if site.quote == DOUBLE:
        return _DOUBLE_SPECIAL_RE.sub(r"\\\g<0>", value)
    # Always quoted, even when "safe": a bare value could be a keyword or an assignment.
    return "'" + value.replace("'", "'\\''") + "'"


def render_shell(
    command: str,
    scope: Scope,
    *,
    where: str | None = None,
    untrusted_env: Mapping[str, str] | None = None,
) -> str:
    """``command`` with every reference filled in so that its value stays data.

    Raises ``ExpressionError`` (at the reference's position; prefixed with ``where``, such
    as ``"task 'build', field 'command'"``) before filling in anything if a value cannot be
    placed safely; see the module docstring for the rules. ``untrusted_env`` holds the
    environment variables the command runs with whose values came from templates or from
    outside (``$N`` set from ``${webhook...}``): where the command uses one of them as
    arithmetic, a name or code, its value must meet the same rule.
    """
    untrusted_env = untrusted_env or {}
    analysis = _analyse(command, frozenset(untrusted_env))
    values = [to_text(scope.resolve(ref)) for ref in analysis.references]
    for index, (ref, value) in enumerate(zip(analysis.references, values, strict=True)):
        char = mark(index)
        site = analysis.facts.sites.get(char)
        problem = _check(value, ref, site, analysis.facts.needs.get(char, {}))
        if problem:
            raise ExpressionError(f"{where}: {problem}" if where else problem, command, ref.start)
    for name, needs in analysis.facts.env_needs.items():
        for kind, why in needs.items():
            problem = _problem(untrusted_env[name], kind, secret=True)
            if problem:
                text = f"environment variable ${name} {problem}, but it ends up {why}"
                text += f": {_HINTS[kind]}" if kind in _HINTS else ""
                raise ExpressionError(f"{where}: {text}" if where else text, command)
    rendered, index = [], 0
    for part in analysis.parts:
        if isinstance(part, Reference):
            rendered.append(_escape(values[index], analysis.facts.sites[mark(index)]))
            index += 1
        else:
            rendered.append(part)
    result = "".join(rendered)
    size = len(os.fsencode(result)) + 1
    if sys.platform.startswith("linux") and size > MAX_ARGUMENT and analysis.references:
        problem = (
            f"the command with its values filled in is {size} bytes, more than the "
            f"{MAX_ARGUMENT} bytes Linux allows one command-line argument; pass large "
            "values through a file or the task's environment"
        )
        raise ExpressionError(f"{where}: {problem}" if where else problem, command)
    return result


@dataclass
class PlannedCommand:
    """What ``--dry-run`` can say about a shell command before anything runs."""

    text: str  # exactly what the shell gets when ``complete``; else references left as written
    complete: bool
    problems: list[str]  # why it would be refused
    notes: list[str]  # what a value filled in at run time must be


def plan_shell(command: str, scope: Scope) -> PlannedCommand:
    """Render what can be rendered now; say what the rest must be and what would fail."""
    try:
        analysis = _analyse(command)
    except ExpressionError as exc:
        return PlannedCommand(command, False, [str(exc)], [])
    rendered: list[str] = []
    problems: list[str] = []
    notes: list[str] = []
    index = 0
    for part in analysis.parts:
        if not isinstance(part, Reference):
            rendered.append(part)
            continue
        char = mark(index)
        index += 1
        site = analysis.facts.sites.get(char)
        needs = analysis.facts.needs.get(char, {})
        try:
            value = to_text(scope.resolve(part))
        except UnresolvedReference:
            rendered.append(part.text)
            refusal = _check("0", part, site, {k: w for k, w in needs.items() if k == NEVER})
            if refusal:
                problems.append(refusal)
                continue
            for kind, why in needs.items():
                rule = _RULES.get(kind, "plain text")
                notes.append(f"{part.text} must be {rule}: it ends up {why}")
            continue
        problem = _check(value, part, site, needs)
        if problem:
            problems.append(problem)
        rendered.append(part.text if problem or site is None else _escape(value, site))
    complete = not problems and all(
        not isinstance(p, Reference) or _resolvable(p, scope) for p in analysis.parts
    )
    return PlannedCommand("".join(rendered), complete, problems, notes)


def _resolvable(ref: Reference, scope: Scope) -> bool:
    try:
        scope.resolve(ref)
    except UnresolvedReference:
        return False
    return True
