"""Checks on a workflow's raw data that the model cannot make: ids, the graph, expressions, units.

They run on the parsed data, not on the model, so a task that failed model validation still
has its dependencies and references checked and every problem is reported in one pass. Each
check yields ``Finding``s (a message and a data path) that ``locate.to_problem`` places.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from ..errors import ExpressionError
from .conditions import parse_condition
from .limits import clip
from .locate import WARNING, DataPath, Finding, task_id_of
from .templates import Reference, find_references

# Keys holding one task nested in another (a loop's ``task`` is the original's ``then``).
NESTED = ("then", "else", "task", "on_failure", "on_success")
CALLBACKS = ("on_failure", "on_success")


def check(data: dict[str, Any]) -> list[Finding]:
    """Every graph, expression, unit and schedule finding in a workflow's data."""
    tasks = top_tasks(data)
    graph = Graph(tasks)
    findings = [*graph.findings, *graph.cycles()]
    findings += _check_expressions(tasks, graph)
    findings += _check_units(data, tasks)
    findings += _check_cron(data)
    findings += _check_trigger_keys(data)
    findings += _check_secret_arguments(tasks)
    return findings


def check_graph(data: dict[str, Any]) -> list[Finding]:
    """The graph findings alone: ids, dependencies, handlers, cycles (what the engine needs)."""
    graph = Graph(top_tasks(data))
    return [*graph.findings, *graph.cycles()]


def top_tasks(data: dict[str, Any]) -> list[tuple[int, dict[str, Any]]]:
    """(index, task) for each top-level task that is a mapping."""
    tasks = data.get("tasks")
    if not isinstance(tasks, list):
        return []
    return [(i, task) for i, task in enumerate(tasks) if isinstance(task, dict)]


def walk_tasks(node: dict[str, Any], path: DataPath) -> Iterator[tuple[DataPath, dict[str, Any]]]:
    """The task at ``path`` and every task nested in it (then, else, a loop's task, tasks,
    inline on_failure and on_success)."""
    yield path, node
    for key in NESTED:
        child = node.get(key)
        if isinstance(child, dict):
            yield from walk_tasks(child, (*path, key))
    children = node.get("tasks")
    if isinstance(children, list):
        for index, child in enumerate(children):
            if isinstance(child, dict):
                yield from walk_tasks(child, (*path, "tasks", index))


def did_you_mean(word: str, choices: Iterable[str] | Suggestions) -> str:
    """ "; did you mean 'x'?" for the closest choice, or ""."""
    if not isinstance(choices, Suggestions):
        choices = Suggestions(choices)
    close = choices.closest(word)
    return f"; did you mean '{close}'?" if close else ""


class Suggestions:
    """Close matches among names, cheap however many names and questions there are.

    difflib compares the word with every name, which is fine for a few dozen field names but
    quadratic for a workflow's task ids (10,000 unknown dependencies among 10,000 tasks took
    48 s). Past ``_FEW`` names only those sharing a one-deletion variant with the word are
    compared (the usual typos: a letter dropped, added, changed or two swapped), and words
    or names longer than ``_LONGEST`` get no suggestion.
    """

    _FEW = 50
    _LONGEST = 64

    def __init__(self, names: Iterable[str]) -> None:
        self.names = [n for n in names if isinstance(n, str) and len(n) <= self._LONGEST]
        self._variants: dict[str, list[str]] | None = None
        self._answers: dict[str, str | None] = {}

    def closest(self, word: str) -> str | None:
        if len(word) > self._LONGEST:
            return None
        if word not in self._answers:
            candidates = self.names if len(self.names) <= self._FEW else self._near(word)
            import difflib  # only when there is something to suggest

            close = difflib.get_close_matches(word, candidates, n=1, cutoff=0.6)
            self._answers[word] = close[0] if close else None
        return self._answers[word]

    def _near(self, word: str) -> list[str]:
        if self._variants is None:
            self._variants = {}
            for name in self.names:
                for variant in _deletions(name):
                    self._variants.setdefault(variant, []).append(name)
        found: dict[str, None] = {}
        for variant in _deletions(word):
            found.update(dict.fromkeys(self._variants.get(variant, ())))
        return list(found)


def _deletions(word: str) -> set[str]:
    """``word`` and every string made by deleting one of its characters."""
    return {word} | {word[:i] + word[i + 1 :] for i in range(len(word))}


class Graph:
    """Task ids and dependencies of the top-level tasks, with the findings of building them."""

    def __init__(self, tasks: list[tuple[int, dict[str, Any]]]):
        self.findings: list[Finding] = []
        self.index: dict[str, int] = {}  # top-level id -> index of its first definition
        self.ids: dict[int, str] = {}  # the reverse, for the tasks that own their id
        self.owner: dict[str, str | None] = {}  # every id -> id of the top-level task holding it
        self.deps: dict[int, list[str]] = {}  # top-level index -> known top-level dependencies
        self.handled: dict[str, set[str]] = {}  # handler id -> tasks whose failure it handles
        self._collect_ids(tasks)
        self.top_names = Suggestions(self.index)
        self.all_names = Suggestions(self.owner)
        # Top-level tasks named as a top-level task's callback run only as callbacks (the
        # engine leaves them out of the graph), so nothing can wait for them.
        named = (name for _, n in tasks for key in CALLBACKS for _, name in _names(n.get(key), ()))
        self.handlers = {h for h in named if h in self.index}
        self._upstream: dict[int, int] | None = None  # see reaches()
        for index, node in tasks:
            self.deps[index] = self._dependencies(index, node)
            self._check_nested(index, node)

    def _collect_ids(self, tasks: list[tuple[int, dict[str, Any]]]) -> None:
        first: dict[str, DataPath] = {}
        for index, node in tasks:
            top = task_id_of(node)
            if node.get("id") in (None, ""):
                self._error("missing 'id': every top-level task needs one", ("tasks", index))
            elif top is not None and top not in first:
                self.index[top] = index
                self.ids[index] = top
            for path, sub in walk_tasks(node, ("tasks", index)):
                task_id = task_id_of(sub)
                if task_id is None:
                    continue
                if task_id in first:
                    message = f"duplicate task id '{task_id}'"
                    self.findings.append(Finding(message, (*path, "id"), also=first[task_id]))
                else:
                    first[task_id] = (*path, "id")
                    self.owner[task_id] = top

    def _dependencies(self, index: int, node: dict[str, Any]) -> list[str]:
        own = task_id_of(node)
        known = []
        for path, name in _names(node.get("depends_on"), ("tasks", index, "depends_on")):
            if name == own:
                self._error(f"task '{own}' depends on itself", path)
            elif name in self.handlers:
                self._error(
                    f"depends on '{name}', which runs only as an on_success/on_failure callback",
                    path,
                )
            elif name in self.index:
                known.append(name)
            elif name in self.owner:
                owner = self.owner[name]
                self._error(
                    f"depends on '{name}', a task nested inside '{owner}'; "
                    f"depend on '{owner}' instead", path,
                )  # fmt: skip
            else:
                message = f"depends on unknown task '{name}'"
                self._error(message + did_you_mean(name, self.top_names), path)
        return known

    def _check_nested(self, index: int, node: dict[str, Any]) -> None:
        """Callback names everywhere, and depends_on inside composites."""
        top = task_id_of(node)
        for path, sub in walk_tasks(node, ("tasks", index)):
            for key in CALLBACKS:
                for name_path, handler in _names(sub.get(key), (*path, key)):
                    self._check_handler(handler, sub, name_path, top, key)
            if sub is node:
                continue
            for dep_path, name in _names(sub.get("depends_on"), (*path, "depends_on")):
                if name not in self.owner:
                    message = f"depends on unknown task '{name}'"
                    self._error(message + did_you_mean(name, self.all_names), dep_path)

    def _check_handler(
        self, handler: str, node: dict[str, Any], path: DataPath, top: str | None, key: str
    ) -> None:
        if handler == task_id_of(node):
            self._error(f"task '{handler}' is its own {key} callback", path)
        elif handler in self.index:
            if top is not None:
                self.handled.setdefault(handler, set()).add(top)
        elif handler in self.owner:
            self._error(
                f"{key} names '{handler}', a task nested inside '{self.owner[handler]}'; "
                "a callback must be a top-level task", path,
            )  # fmt: skip
        else:
            message = f"{key} names unknown task '{handler}'"
            self._error(message + did_you_mean(handler, self.top_names), path)

    def _error(self, message: str, path: DataPath) -> None:
        self.findings.append(Finding(message, path))

    def reaches(self, index: int, targets: set[str]) -> bool:
        """Whether one of ``targets`` has finished before top-level task ``index`` runs.

        Upstream means through depends_on, plus: a failure handler runs after the task it
        handles. A direct dependency (the usual case) is answered at once; anything else from
        the upstream sets of all tasks, computed once as bit sets (a search per reference was
        quadratic: 10,000 references down a chain of 10,000 tasks). A task on or below a
        dependency cycle (reported on its own) has no such set and counts as reaching all.
        """
        direct = set(self.deps.get(index, ()))
        if index in self.ids:
            direct |= self.handled.get(self.ids[index], set())
        if targets & direct:
            return True
        upstream = self._upstream_sets().get(index)
        if upstream is None:
            return True
        return any(upstream >> self.index[t] & 1 for t in targets if t in self.index)

    def _upstream_sets(self) -> dict[int, int]:
        """Top-level index -> bit set (bit i: top-level task i) of everything upstream of it."""
        if self._upstream is not None:
            return self._upstream
        before: dict[int, set[int]] = {}  # index -> indexes that finish before it
        for index in self.deps:
            names = list(self.deps[index])
            names += self.handled.get(self.ids.get(index, ""), ())
            before[index] = {self.index[n] for n in names if n in self.index}
        after: dict[int, list[int]] = {}
        waiting = {index: len(earlier) for index, earlier in before.items()}
        for index, earlier in before.items():
            for other in earlier:
                after.setdefault(other, []).append(index)
        ready = [index for index, count in waiting.items() if count == 0]
        upstream: dict[int, int] = {}
        while ready:  # in topological order, so every set before is complete
            index = ready.pop()
            bits = 0
            for other in before[index]:
                bits |= upstream.get(other, 0) | 1 << other
            upstream[index] = bits
            for later in after.get(index, ()):
                waiting[later] -= 1
                if waiting[later] == 0:
                    ready.append(later)
        self._upstream = upstream
        return upstream

    def cycles(self) -> list[Finding]:
        """One finding per dependency cycle, its path starting at its first task in the file."""
        order = sorted(self.index, key=self.index.__getitem__)
        findings, reported = [], set()
        for cycle in _find_cycles(order, {name: self.deps[self.index[name]] for name in order}):
            start = min(cycle, key=self.index.__getitem__)
            at = cycle.index(start)
            cycle = cycle[at:] + cycle[:at]
            if tuple(cycle) not in reported:
                reported.add(tuple(cycle))
                message = "dependency cycle: " + " -> ".join([*cycle, start])
                findings.append(Finding(message, ("tasks", self.index[start], "depends_on")))
        return findings


def _names(value: Any, path: DataPath) -> Iterator[tuple[DataPath, str]]:
    """The task names in a depends_on value (one name or a list), each with its path."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, list):
        for i, name in enumerate(value):
            if isinstance(name, str):
                yield (*path, i), name


MAX_CYCLES = 20  # reported per workflow: past a few, more say nothing new


def _find_cycles(order: list[str], edges: dict[str, list[str]]) -> list[list[str]]:
    """A cycle for each back edge of a depth-first search (iterative: no recursion limit),
    the first ``MAX_CYCLES`` of them."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    at: dict[str, int] = {}  # position on the current path
    cycles = []
    for root in order:
        if root in state:
            continue
        path, stack = [root], [iter(edges[root])]
        state[root], at[root] = 1, 0
        while stack:
            following = next(stack[-1], None)
            if following is None:
                state[path.pop()] = 2
                stack.pop()
            elif state.get(following) == 1:
                cycles.append(path[at[following] :])
                if len(cycles) >= MAX_CYCLES:
                    return cycles
            elif following not in state:
                state[following], at[following] = 1, len(path)
                path.append(following)
                stack.append(iter(edges[following]))
    return cycles


@dataclass
class _Scope:
    """What the strings of one top-level task may refer to."""

    index: int
    own: str | None
    nested: set[str] = field(default_factory=set)


def _check_expressions(tasks: list[tuple[int, dict[str, Any]]], graph: Graph) -> list[Finding]:
    findings: list[Finding] = []
    for index, node in tasks:
        scope = _Scope(index, task_id_of(node))
        scope.nested = {task_id_of(sub) or "" for _, sub in walk_tasks(node, ())} - {"", scope.own}
        for rel, text, is_condition, in_handler in _strings(node, (), task=True, handler=False):
            path = ("tasks", index, *rel)
            try:
                refs = parse_condition(text).references if is_condition else find_references(text)
            except ExpressionError as exc:
                kind = "condition" if is_condition else "expression"
                where = f" at position {exc.position}" if exc.position is not None else ""
                problem = f"invalid {kind}: {exc.reason}{where} in {clip(exc.expression, 80)!r}"
                findings.append(Finding(problem, path))
                continue
            for ref in refs:
                message = _reference_problem(ref, scope, in_handler, graph)
                if message:
                    findings.append(Finding(message, path))
                if ref.filters and not _is_http_url(node, rel):
                    message = (
                        f"{ref.text}: the 'raw' filter is only for an http task's url, where "
                        "it inserts a value unencoded; remove '|raw'"
                    )
                    findings.append(Finding(message, path))
    return list(dict.fromkeys(findings))  # one finding for a reference repeated in a value


def _strings(
    value: Any, path: DataPath, *, task: bool, handler: bool
) -> Iterator[tuple[DataPath, str, bool, bool]]:
    """(path, text, is_condition, inside_an_on_failure_handler) for each string to parse."""
    if isinstance(value, str):
        if "${" in value:  # the cheap test that keeps validation fast: no ${, no reference
            yield path, value, False, handler
    elif isinstance(value, dict):
        for key, item in value.items():
            sub = (*path, key)
            if task and key == "condition" and isinstance(item, str):
                yield sub, item, True, handler
            elif task and key in NESTED and isinstance(item, dict):
                yield from _strings(item, sub, task=True, handler=handler or key in CALLBACKS)
            elif task and key == "tasks" and isinstance(item, list):
                for i, child in enumerate(item):
                    yield from _strings(child, (*sub, i), task=True, handler=handler)
            else:
                yield from _strings(item, sub, task=False, handler=handler)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _strings(item, (*path, i), task=False, handler=handler)


def _is_http_url(node: dict[str, Any], path: DataPath) -> bool:
    """Whether ``path`` (below the task ``node``) is the ``url`` of an http task."""
    task, index = node, 0
    while index < len(path):
        key = path[index]
        if key in NESTED and isinstance(task.get(key), dict):
            task, index = task[key], index + 1
        elif key == "tasks" and isinstance(task.get(key), list) and index + 1 < len(path):
            task, index = task[key][path[index + 1]], index + 2
        else:
            break
    return task.get("type") == "http" and tuple(path[index:]) == ("url",)


def _reference_problem(ref: Reference, scope: _Scope, in_handler: bool, graph: Graph) -> str | None:
    """Why ``${tasks.X...}`` cannot be resolved where it is written, or None when it can."""
    name = ref.task_id
    if ref.scope != "tasks" or name is None or name in scope.nested:
        return None
    if name == scope.own:
        if in_handler:  # an inline on_failure handler runs after its task failed
            return None
        return f"refers to task '{name}' itself, which has no result while it runs"
    if name not in graph.owner:
        return f"refers to unknown task '{name}'" + did_you_mean(name, graph.all_names)
    owner = graph.owner[name]
    if graph.reaches(scope.index, {name} if owner is None else {name, owner}):
        return None
    this = f"'{scope.own}'" if scope.own else "this task"
    if owner is not None and owner != name:
        return (
            f"refers to task '{name}' (nested inside '{owner}'), which is not upstream of "
            f"{this} (add '{owner}' to depends_on)"
        )
    return f"refers to task '{name}', which is not upstream of {this} (add it to depends_on)"


# Fields whose text ends up on a process's command line, where ``ps`` (and /proc/PID/cmdline)
# shows it to every user of the machine: a secret belongs in the task's environment instead.
ARGV_FIELDS = {
    "shell": ("command",),
    "python": ("args", "script"),
    "javascript": ("args", "script"),
    "docker": ("command",),
}


def _check_secret_arguments(tasks: list[tuple[int, dict[str, Any]]]) -> list[Finding]:
    """A warning for each ``${secret.NAME}`` templated into a command line."""
    findings = []
    for index, top in tasks:
        for path, node in walk_tasks(top, ("tasks", index)):
            for key in ARGV_FIELDS.get(str(node.get("type")), ()):
                value = node.get(key)
                items = value if isinstance(value, list) else [value]
                for at, text in enumerate(items):
                    if not isinstance(text, str) or "${" not in text:
                        continue
                    where = (*path, key, at) if isinstance(value, list) else (*path, key)
                    for name in _secret_names(text):
                        findings.append(Finding(_secret_on_command_line(name, key), where, WARNING))
    return findings


def _secret_names(text: str) -> list[str]:
    try:
        references = find_references(text)
    except ExpressionError:
        return []  # reported by _check_expressions
    return list(dict.fromkeys(r.path[0] for r in references if r.scope == "secret"))


def _secret_on_command_line(name: str, key: str) -> str:
    variable = name.upper().replace("-", "_")
    return (
        f"${{secret.{name}}} in '{key}' is put on the command line, where `ps` shows it to "
        f"every user of this machine: pass it through the environment instead "
        f'(environment: {{{variable}: "${{secret.{name}}}"}}, then use ${variable} in the '
        "command, os.environ in Python, process.env in JavaScript)"
    )


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_units(data: dict[str, Any], tasks: list[tuple[int, dict[str, Any]]]) -> list[Finding]:
    """Warnings for numbers that look written in the wrong unit, retries that never retry, and
    ``cache:`` or ``parallel: false`` where it does nothing (a nested task)."""
    findings: list[Finding] = []
    for index, node in tasks:
        for path, sub in walk_tasks(node, ("tasks", index)):
            timeout: Any = sub.get("timeout")
            if sub.get("type") == "http" and _is_number(timeout) and 0 < timeout < 100:
                message = (
                    f"timeout {timeout} looks like seconds; an http task's timeout number is "
                    f'milliseconds (as in the original format), write "{timeout}s" or '
                    f"{timeout * 1000:g}"
                )
                findings.append(Finding(message, (*path, "timeout"), WARNING))
            findings += _retry_warnings(sub.get("retry"), (*path, "retry"))
            if sub is not node and sub.get("cache") not in (None, False):
                message = (
                    "cache applies to top-level tasks only: this nested task runs whenever its "
                    "parent does (give the parent cache: instead)"
                )
                findings.append(Finding(message, (*path, "cache"), WARNING))
            if sub is not node and sub.get("parallel") is False and sub.get("type") != "loop":
                message = (
                    "parallel: false applies to top-level tasks only: this nested task runs as "
                    "its parent schedules it (give the parent parallel: false instead)"
                )
                findings.append(Finding(message, (*path, "parallel"), WARNING))
    defaults = data.get("defaults")
    if isinstance(defaults, dict):
        findings += _retry_warnings(defaults.get("retry"), ("defaults", "retry"))
    expected: Any = data.get("expected_duration")
    if _is_number(expected) and 0 < expected < 1000:
        message = (
            f"expected_duration {expected} looks like seconds; a bare number is milliseconds "
            f'(as in the original format), write "{expected}s" or {expected * 1000:g}'
        )
        findings.append(Finding(message, ("expected_duration",), WARNING))
    return findings


def _retry_warnings(retry: Any, path: DataPath) -> list[Finding]:
    if not isinstance(retry, dict):
        return []
    findings = []
    delay: Any = retry.get("delay")
    if _is_number(delay) and 0 < delay < 50:
        message = (
            f"retry delay {delay} looks like seconds; a bare number is milliseconds, "
            f'write "{delay}s" or {delay * 1000:g}'
        )
        findings.append(Finding(message, (*path, "delay"), WARNING))
    attempts = retry.get("attempts")
    if attempts == 1 and not isinstance(attempts, bool):
        message = "retry with attempts 1 never retries (attempts counts the first try too)"
        findings.append(Finding(message, (*path, "attempts"), WARNING))
    elif "attempts" not in retry:
        message = "retry without 'attempts' makes a single attempt; set attempts to 2 or more"
        findings.append(Finding(message, path, WARNING))
    return findings


def _check_cron(data: dict[str, Any]) -> list[Finding]:
    """The schedule and time zone of a cron trigger, checked by the parser the scheduler uses
    (five fields or an @alias, values in range, a date it can ever match, a known zone)."""
    trigger = data.get("trigger")
    if not isinstance(trigger, dict) or trigger.get("type") not in ("cron", "schedule"):
        return []
    config = trigger.get("config")
    if not isinstance(config, dict):
        return []
    from ..errors import ScheduleError
    from .cron import CronSchedule, resolve_zone

    findings = []
    schedule = config.get("schedule")
    if isinstance(schedule, str):
        try:
            CronSchedule.parse(schedule, "UTC")
        except ScheduleError as exc:
            findings.append(Finding(str(exc), ("trigger", "config", "schedule")))
    zone = config.get("timezone")
    if isinstance(zone, str):
        try:
            resolve_zone(zone)
        except ScheduleError as exc:
            findings.append(Finding(str(exc), ("trigger", "config", "timezone")))
    return findings


# Which key of a trigger's config each trigger type uses; the original format lets one config
# carry all of them, and the type chooses.
_TRIGGER_KEYS = {"cron": "schedule", "schedule": "schedule", "webhook": "webhook",
                 "file_change": "files"}  # fmt: skip


def _check_trigger_keys(data: dict[str, Any]) -> list[Finding]:
    """A warning for each of schedule, files, webhook in a trigger's config that its type does
    not use: accepted (the original format allowed it), but it does nothing."""
    trigger = data.get("trigger")
    config = trigger.get("config") if isinstance(trigger, dict) else None
    if not isinstance(config, dict):
        return []
    kind = trigger.get("type") if isinstance(trigger, dict) else None
    used = _TRIGGER_KEYS.get(kind) if isinstance(kind, str) else None
    findings = []
    for key in ("schedule", "files", "webhook"):
        if key in config and key != used:
            message = (
                f"'{key}' is not used by a '{kind}' trigger: the trigger's type chooses what "
                f"starts the workflow (only one type per workflow)"
            )
            findings.append(Finding(message, ("trigger", "config", key), WARNING))
    return findings
