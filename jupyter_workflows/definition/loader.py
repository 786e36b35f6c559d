"""Read workflow definitions (JSON or YAML files, text, dicts) into the model, checking everything.

``validate_file`` and ``validate_text`` report every problem at once, each located (file, line,
column, task id, field); ``load_workflow`` returns the ``Workflow`` or raises ``ValidationError``
with the same problems. Warnings never fail validation. YAML is imported only when YAML text is
read, and line positions are computed only when there is something to report. Whatever the
input, the work is bounded by ``limits``: a file beyond them is one more located problem.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import Problem, ValidationError
from . import acceptance, limits, parsing, validate
from .locate import ERROR, Finding, Locator, to_problem

if TYPE_CHECKING:
    from .model import Workflow

__all__ = [
    "Locator",
    "ValidationReport",
    "check_graph",
    "load_for_run",
    "load_workflow",
    "parse_text",
    "validate_file",
    "validate_text",
]


class ValidationReport:
    """Every problem found in one definition; ``workflow`` is set when there is no error.

    ``unreadable``: the file could not be read at all (missing, a directory, not a regular
    file), as opposed to read and found invalid. ``accepted``: data the acceptance check
    found valid without the model, which is then built the first time ``workflow`` is read;
    ``checked``: what the check made of it (``acceptance.checked``).
    """

    def __init__(
        self,
        source: str,
        problems: list[Problem] | None = None,
        workflow: Workflow | None = None,
        unreadable: bool = False,
        *,
        accepted: dict[str, Any] | None = None,
        checked: acceptance.Fields | None = None,
    ) -> None:
        self.source = source
        self.problems = problems if problems is not None else []
        self.unreadable = unreadable
        self._workflow = workflow
        self._accepted = accepted
        self._checked = checked

    @property
    def workflow(self) -> Workflow | None:
        if self._workflow is None and self._accepted is not None and self.ok:
            from .model import Workflow

            self._workflow = Workflow.model_validate(self._accepted)
            self._accepted = self._checked = None
        return self._workflow

    @workflow.setter
    def workflow(self, value: Workflow | None) -> None:
        self._workflow, self._accepted, self._checked = value, None, None

    def runnable(self) -> Workflow | None:
        """The workflow for the engine to run: as plain objects (``plain.py``: no pydantic)
        when the acceptance check was sure of it and each of its classes has a plain form,
        else the model (``workflow``)."""
        if self._workflow is None and self._checked is not None and self.ok:
            from .plain import plain_form

            plain = plain_form(self._checked)
            if plain is not None:
                return plain  # type: ignore[no-any-return]
        return self.workflow

    def __repr__(self) -> str:
        return f"ValidationReport({self.source!r}, {self.problems!r}, ok={self.ok})"

    @property
    def ok(self) -> bool:
        """No errors (warnings allowed)."""
        return not any(p.is_error for p in self.problems)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.is_error]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if not p.is_error]

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "ok": self.ok,
            "unreadable": self.unreadable,
            "errors": len(self.errors),
            "warnings": len(self.warnings),
            "problems": [p.to_dict() for p in self.problems],
        }

    def __str__(self) -> str:
        if not self.problems:
            return f"{self.source}: ok"
        return "\n".join(_format(p) for p in self.problems)


def _format(problem: Problem) -> str:
    if problem.is_error:
        return str(problem)
    where = problem.location()
    return f"{where}: warning: {problem.message}" if where else f"warning: {problem.message}"


def load_workflow(
    source: str | Path | dict[str, Any], *, project_root: Path | None = None
) -> Workflow:
    """The workflow in a file (relative paths resolve against ``project_root``) or a parsed dict.

    Raises ``ValidationError`` (``.problems``: errors and warnings) when there is any error, and
    ``DefinitionError`` naming the file when it is missing or unreadable.
    """
    if isinstance(source, dict):
        excess = _excess(source, "<dict>", Locator())
        report = (
            ValidationReport("<dict>", excess)
            if excess
            else _validate(source, "<dict>", quick=False)
        )
    else:
        path = Path(source)
        if project_root is not None and not path.is_absolute():
            path = Path(project_root) / path
        report = _validate_path(path, quick=False)
    if report.workflow is None:
        raise ValidationError(report.problems)
    return report.workflow


def load_for_run(path: Path) -> Workflow:
    """``load_workflow`` of a file, for a process that runs it and hands it to no one else
    (``workflow run``): the same checks and errors, but the workflow comes as plain objects
    (``ValidationReport.runnable``) where it can, so that starting the run never imports
    pydantic."""
    report = _validate_path(path, quick=True, always_check=True)
    workflow = report.runnable()
    if workflow is None:
        raise ValidationError(report.problems)
    return workflow


Check = Callable[[dict[str, Any]], list[Finding]]


def validate_file(path: str | Path, *, checks: Check | None = None) -> ValidationReport:
    """Every problem in a workflow file, each located; never raises for a bad file.

    ``checks`` adds findings of a caller that knows more than the file (the project's path
    policy, for ``workflow validate``)."""
    try:
        return _validate_path(Path(path), checks)
    except parsing.Unreadable as exc:
        return ValidationReport(str(path), [Problem(exc.reason, file=str(path))], unreadable=True)


def validate_text(
    text: str, *, source: str = "<string>", fmt: str | None = None, line_offset: int = 0
) -> ValidationReport:
    """Every problem in definition text (a notebook cell); lines move down by ``line_offset``."""
    try:
        data, locator = _parse(text, source, fmt, line_offset)
    except ValidationError as exc:
        return ValidationReport(source, exc.problems)
    return _validate(data, source, locator)


def check_graph(workflow: Workflow, source: str = "<workflow>") -> None:
    """Raise ``ValidationError`` when the tasks of an already built ``Workflow`` do not form a
    graph that can run: duplicate or missing ids, unknown dependencies, cycles, handlers.

    The same checks, and messages, as validation; for a model built in Python (the engine
    calls this for every workflow it is given), so it never waits for a task that cannot end.
    """
    if len(workflow.tasks) > limits.MAX_TASKS:
        raise ValidationError([Problem(_too_many_tasks(len(workflow.tasks)), file=source)])
    data = workflow.model_dump(by_alias=True, warnings=False)
    errors = [f for f in validate.check_graph(data) if f.severity == ERROR]
    if errors:
        raise ValidationError([to_problem(f, data, Locator(), source) for f in errors])


def parse_text(
    text: str, *, source: str = "<string>", fmt: str | None = None
) -> tuple[Any, Locator]:
    """Parse JSON or YAML (``fmt`` None: JSON when the text starts with '{', else YAML).

    Raises ``ValidationError`` with located problems when the text does not parse or holds
    more than ``limits`` allow.
    """
    return _parse(text, source, fmt, 0)


def _validate_path(
    path: Path, checks: Check | None = None, *, quick: bool = True, always_check: bool = False
) -> ValidationReport:
    try:
        text = parsing.read_file(path)
        data, locator = _parse(text, str(path), parsing.FORMATS.get(path.suffix.lower()), 0)
    except ValidationError as exc:
        return ValidationReport(str(path), exc.problems)
    return _validate(data, str(path), locator, checks, quick=quick, always_check=always_check)


def _parse(text: str, source: str, fmt: str | None, line_offset: int) -> tuple[Any, Locator]:
    data, excess, positions = parsing.parse(text, source, fmt, line_offset)
    locator = Locator(text, parsing.format_of(text, fmt), line_offset, positions)
    if excess:
        raise ValidationError(_located(excess, data, source, locator))
    return data, locator


def _excess(data: Any, source: str, locator: Locator) -> list[Problem]:
    """What in data given as a dict is beyond the limits, located."""
    return _located(limits.check_data(data), data, source, locator)


def _located(
    excess: list[limits.Excess], data: Any, source: str, locator: Locator
) -> list[Problem]:
    problems = [to_problem(Finding(text, path), data, locator, source) for text, path in excess]
    return sorted(problems, key=lambda p: (p.line is None, p.line or 0, p.column or 0))


def _too_many_tasks(count: int) -> str:
    return f"{count:,} tasks; a workflow holds at most {limits.MAX_TASKS:,} (nested ones included)"


def _validate(
    data: Any,
    source: str,
    locator: Locator | None = None,
    checks: Check | None = None,
    *,
    quick: bool = True,
    always_check: bool = False,
) -> ValidationReport:
    """Model validation and the graph, expression and unit checks, all reported together.

    ``data`` is within the limits already (``_excess`` found nothing). ``quick``: the caller
    may not need the model, so a small workflow in a process that has not imported pydantic
    yet (``always_check``: even if it has) is first given to the acceptance check (the model
    is built only if asked for).
    """
    locator = locator or Locator()
    if not isinstance(data, dict):
        got = "an empty document" if data is None else f"a {type(data).__name__}"
        message = f"the top level must be a mapping with 'name' and 'tasks', got {got}"
        position = locator.position(())
        line, column = position if position else (None, None)
        return ValidationReport(source, [Problem(message, file=source, line=line, column=column)])
    count = sum(1 for _, node in validate.top_tasks(data) for _ in validate.walk_tasks(node, ()))
    if count > limits.MAX_TASKS:
        finding = Finding(_too_many_tasks(count), ("tasks",))
        return ValidationReport(source, [to_problem(finding, data, locator, source)])
    workflow: Workflow | None = None
    accepted: dict[str, Any] | None = None
    checked = _acceptance_check(data, count, always_check) if quick else None
    findings: list[Finding] = []
    if checked is not None:
        accepted = data
    else:
        workflow, findings = _model_validate(data)
    findings += validate.check(data)
    if checks is not None:
        findings += checks(data)
    problems = [to_problem(f, data, locator, source) for f in findings[: limits.MAX_PROBLEMS]]
    problems.sort(key=lambda p: (p.line is None, p.line or 0, p.column or 0))
    if len(findings) > limits.MAX_PROBLEMS:
        more = len(findings) - limits.MAX_PROBLEMS
        problems.append(Problem(f"{more:,} more problem(s) not listed", file=source))
    if any(p.is_error for p in problems):
        return ValidationReport(source, problems)
    return ValidationReport(source, problems, workflow, accepted=accepted, checked=checked)


def _acceptance_check(data: dict[str, Any], count: int, always: bool) -> acceptance.Fields | None:
    """What the acceptance check makes of ``data`` when it is sure the model would accept it,
    asked where that is cheaper than importing the model. ``always``: also where the model
    is imported already (a run wants the plain form, and the same one in every process)."""
    if count > acceptance.MOST_TASKS:
        return None
    if "jupyter_workflows.definition.model" in sys.modules and not always:
        return None
    return acceptance.checked(data)


def _model_validate(data: dict[str, Any]) -> tuple[Workflow | None, list[Finding]]:
    """The workflow, or the findings of the model's validation errors."""
    from pydantic import ValidationError as PydanticValidationError

    from .model import Workflow

    findings: list[Finding] = []
    fields = data
    if not all(isinstance(k, str) for k in data):
        from .model_errors import not_text

        # pydantic raises TypeError (not an error it reports) for a top-level key not text
        findings = [Finding(not_text(k), (k,)) for k in data if not isinstance(k, str)]
        fields = {k: v for k, v in data.items() if isinstance(k, str)}
    try:
        return Workflow.model_validate(fields), findings
    except PydanticValidationError as exc:
        from .model_errors import translate  # only when there is something to translate

        return None, findings + translate(exc, data)
