"""``workflow run --dry-run``: the order tasks would run in, with what can be resolved now."""

from __future__ import annotations

import json
import os
import unicodedata
from collections.abc import Mapping

import click

from ..definition.conditions import parse_condition
from ..definition.model import AnyTask, Workflow
from ..definition.templates import Scope, find_references, to_text


def waves(workflow: Workflow) -> list[list[AnyTask]]:
    """Tasks grouped by when they could start: each wave depends only on earlier ones."""
    handlers = workflow.callback_ids()
    pending = {t.id: t for t in workflow.tasks if t.id not in handlers}
    done: set[str] = set()
    result = []
    while pending:
        wave = [t for t in pending.values() if all(d in done for d in t.depends_on)]
        if not wave:  # validation rejects cycles; stop rather than loop forever
            break
        result.append(wave)
        for task in wave:
            done.add(task.id)  # type: ignore[arg-type]
            del pending[task.id]
    return result


def preview(text: str, scope: Scope) -> str:
    """Resolve ``${env.*}`` now; leave references to task results as written."""
    out, last = [], 0
    for ref in find_references(text):
        out.append(text[last : ref.start])
        out.append(to_text(scope.resolve(ref)) if ref.scope == "env" else ref.text)
        last = ref.end
    out.append(text[last:])
    return "".join(out)


def _condition_note(condition: str, scope: Scope) -> str:
    parsed = parse_condition(condition)
    if any(ref.scope != "env" for ref in parsed.references):
        return f"if {condition}  (decided at run time)"
    verdict = "runs" if parsed.evaluate(scope) else "SKIPPED"
    return f"if {condition}  -> {verdict}"


def shown(text: str) -> str:
    """``text`` as a JSON string: exact, one line, and no control character reaches the
    terminal (JSON leaves DEL, C1 controls and bidi overrides alone, so those are escaped)."""
    quoted = json.dumps(text, ensure_ascii=False)
    return "".join(
        f"\\u{ord(c):04x}" if unicodedata.category(c) in ("Cc", "Cf", "Cs", "Zl", "Zp") else c
        for c in quoted
    )


def _shell_lines(task: AnyTask, scope: Scope) -> list[str]:
    """What a shell task runs: exactly the bytes its shell gets, or what is left to fill in."""
    from ..definition.shell_quoting import plan_shell

    planned = plan_shell(getattr(task, "command", ""), scope)
    shell = getattr(task, "shell", "/bin/sh")
    lines = [f"command for {shell} -c: {shown(planned.text)}"]
    if not planned.complete and not planned.problems:
        lines[0] += "  (references to task results are filled in at run time)"
    lines += planned.notes
    lines += [f"REFUSED: {problem}" for problem in planned.problems]
    return lines


def _what(task: AnyTask, scope: Scope) -> list[str]:
    config = getattr(task, "config", None)
    if task.type == "database" and config is not None:
        from ..tasks.database.urls import redact

        return [f"{config.operation} on {redact(preview(config.connection, scope))}"]
    if task.type == "shell":
        return _shell_lines(task, scope)
    if task.type == "docker" and getattr(task, "tags", None):
        tags = ", ".join(shown(preview(tag, scope)) for tag in getattr(task, "tags", []))
        built = [f"build {shown(getattr(task, 'dockerfile', None) or 'Dockerfile')}"]
        return [" ".join(built + [f"as {tags}"])]
    for field in ("command", "code", "script", "url", "notebook", "image", "dockerfile"):
        value = getattr(task, field, None)
        if isinstance(value, str):
            return [f"{field}: {shown(preview(value, scope))}"]
    return [task.type]


def print_plan(workflow: Workflow, env: Mapping[str, str]) -> None:
    """Print the plan; values of the variables the workflow declares secret (``secrets:``) and
    of ``WORKFLOW_SECRET_*`` show as ***. ``${secret...}`` is not looked up: left as written."""
    from ..execution.masking import Masker
    from ..secrets.sources import ENV_PREFIX

    environ = {**os.environ, **env}
    hidden = [environ.get(name, "") for name in workflow.secrets]
    hidden += [value for key, value in environ.items() if key.startswith(ENV_PREFIX)]
    masker = Masker(hidden)

    def say(line: str) -> None:
        click.echo(masker.text(line))

    scope = Scope(env={**os.environ, **workflow.defaults.environment, **env})
    say(f"plan for workflow '{workflow.name}' (nothing is run; text is shown as JSON):")
    for number, wave in enumerate(waves(workflow), start=1):
        say(f"wave {number}:")
        for task in wave:
            after = f" (after {', '.join(task.depends_on)})" if task.depends_on else ""
            say(f"  {task.id} [{task.type}]{after}")
            for line in _what(task, scope):
                say(f"      {line}")
            if task.condition:
                say(f"      {_condition_note(task.condition, scope)}")
