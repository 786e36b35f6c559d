"""The exceptions jupyter-workflows raises, all under one root.

    WorkflowError
    ├── DefinitionError            a workflow file cannot be used as written
    │   ├── ValidationError        one or more located problems (``.problems``)
    │   └── ScheduleError          a cron schedule or time zone cannot be used
    ├── ExpressionError            a ``${...}`` template or a condition does not parse
    ├── TaskTypeNotImplemented     a modelled task type that cannot run here
    ├── UnknownPlugin              no task type, alert channel or executor has that name
    ├── TaskFailed                 a task ended unsuccessfully (``.task_id``, ``.exit_code``)
    ├── WorkflowFailed             a run did not succeed (``.execution``, ``.failures``)
    ├── ResumeRefused              a run cannot be resumed as asked (``.execution_id``)
    ├── SecretError                a secret cannot be resolved (``.missing``) or its source
    │                              cannot be used (a secrets file others can read)
    ├── StoreError                 the execution history cannot be read or written
    │   ├── ExecutionNotFound      no execution has that id (or prefix)
    │   ├── AmbiguousExecutionId   a prefix matches several executions
    │   ├── ExecutionNotRunning    a cancel of a run that has ended (``.status``)
    │   ├── StoreUnavailable       the store's folder cannot be used as it is (``.path``)
    │   └── StoreWriteFailed       a write to the store failed: disk full, I/O error
    └── ConfigError                the project's configuration (or its root) is unusable

Cancellation is not here on purpose: the engine uses ``asyncio.CancelledError`` (a
``BaseException``), so ``except Exception`` in user-facing code cannot swallow it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any


class WorkflowError(Exception):
    """Root of every error this package raises on purpose."""


@dataclass(frozen=True)
class Problem:
    """One located finding of validation: where it is and what was expected."""

    message: str
    file: str | None = None
    line: int | None = None
    column: int | None = None
    task_id: str | None = None
    field: str | None = None
    severity: str = "error"  # "error" or "warning"

    @property
    def is_error(self) -> bool:
        return self.severity == "error"

    def location(self) -> str:
        parts = []
        if self.file:
            where = self.file
            if self.line is not None:
                where += f":{self.line}"
                if self.column is not None:
                    where += f":{self.column}"
            parts.append(where)
        if self.task_id:
            parts.append(f"task '{self.task_id}'")
        if self.field:
            parts.append(f"field '{self.field}'")
        return ", ".join(parts)

    def __str__(self) -> str:
        where = self.location()
        return f"{where}: {self.message}" if where else self.message

    def to_dict(self) -> dict[str, object]:
        return {
            "severity": self.severity,
            "message": self.message,
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "task_id": self.task_id,
            "field": self.field,
        }


class DefinitionError(WorkflowError):
    """A workflow definition cannot be used as written (missing file, unreadable, ...)."""


class ScheduleError(DefinitionError):
    """A cron schedule cannot be used: bad expression, unknown time zone, never fires."""


class ValidationError(DefinitionError):
    """A definition has problems; ``problems`` lists every one, each with its place."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        errors = [p for p in problems if p.is_error]
        lines = "\n".join(f"  {p}" for p in errors)
        super().__init__(f"{len(errors)} problem(s) in the workflow definition:\n{lines}")


class ExpressionError(WorkflowError):
    """A ``${...}`` template or a condition that does not parse."""

    def __init__(self, message: str, expression: str, position: int | None = None):
        self.expression = expression
        self.position = position
        self.reason = message
        where = f" at position {position}" if position is not None else ""
        super().__init__(f"{message}{where} in {expression!r}")


class TaskTypeNotImplemented(WorkflowError):
    """A task type the model knows but this installation cannot execute (its implementation,
    or a library it needs, cannot be imported)."""

    def __init__(self, task_type: str, reason: str | None = None):
        self.task_type = task_type
        super().__init__(
            f"task type '{task_type}' cannot run here: {reason}"
            if reason
            else f"task type '{task_type}' is not implemented yet: the definition validates, "
            "but this version of jupyter-workflows cannot run it"
        )


@dataclass
class TaskFailed(WorkflowError):
    """A task ended without success."""

    task_id: str
    exit_code: int | None = None
    reason: str = ""
    extra: dict[str, object] = field(default_factory=dict)

    def __str__(self) -> str:
        code = f" (exit code {self.exit_code})" if self.exit_code is not None else ""
        return f"task '{self.task_id}' failed{code}: {self.reason}".rstrip(": ")


@dataclass(frozen=True)
class TaskFailure:
    """One task that ended badly: its id, how it ended (``failed``, ``timed_out``, ...) and
    its error."""

    task_id: str
    status: str
    error: str | None = None

    def __str__(self) -> str:
        return f"{self.task_id} ({self.status})" + (f": {self.error}" if self.error else "")


class WorkflowFailed(WorkflowError):
    """A run ended without success; raised where a caller asked for that (``execute`` unless
    ``raise_on_failure=False``, the ``%workflow`` magics unless ``--no-raise``).

    ``execution`` is the whole ``Execution``, as it would have been returned; ``failures``
    the tasks that ended badly. The message names each of them with its error, bounded in
    length (the first MAX_LISTED tasks, each error cut at MAX_ERROR characters).
    """

    MAX_LISTED = 10
    MAX_ERROR = 300

    def __init__(
        self,
        execution: Any,
        failures: Sequence[TaskFailure],
        *,
        workflow: str,
        status: str,
        error: str | None = None,
    ):
        self.execution = execution
        self.failures = list(failures)
        self.status = status
        head = f"workflow '{workflow}' {_ended(status)} (execution {execution.id})"
        lines = [f"  {_cut(str(f), self.MAX_ERROR)}" for f in self.failures[: self.MAX_LISTED]]
        if len(self.failures) > self.MAX_LISTED:
            lines.append(f"  ... and {len(self.failures) - self.MAX_LISTED} more")
        if error and not lines:  # the run's own reason (a crash), when no task says more
            lines.append(f"  {_cut(error, self.MAX_ERROR)}")
        super().__init__("\n".join([head + (":" if lines else ""), *lines]))


def _ended(status: str) -> str:
    return {"timed_out": "timed out", "crashed": "crashed", "cancelled": "was cancelled"}.get(
        status, "failed"
    )


def _cut(text: str, limit: int) -> str:
    text = " ".join(text.split())  # one line per task: tracebacks and logs stay in the record
    return text if len(text) <= limit else text[: limit - 1] + "…"


class ResumeRefused(WorkflowError):
    """A run cannot resume ``execution_id`` as asked: another workflow's run, one still
    running, a ``--from``/``--only`` task it does not have. The message says why."""

    def __init__(self, execution_id: str, reason: str):
        self.execution_id, self.reason = execution_id, reason
        super().__init__(f"cannot resume execution {execution_id}: {reason}")


class SecretError(WorkflowError):
    """Secrets a workflow needs cannot be resolved, or a source of secrets cannot be used.

    ``missing`` maps each name not found to the places that need it (``task 'x', field
    'headers.Authorization'``); the message also says where each was looked for. Raised before
    any task starts. Never carries a secret's value."""

    def __init__(self, message: str, missing: dict[str, list[str]] | None = None):
        self.missing = dict(missing or {})
        super().__init__(message)


class StoreError(WorkflowError):
    """The execution history cannot be read or written."""


class ExecutionNotFound(StoreError):
    def __init__(self, execution_id: str):
        self.execution_id = execution_id
        super().__init__(f"no execution with id '{execution_id}'")


class AmbiguousExecutionId(StoreError):
    def __init__(self, prefix: str, matches: list[str]):
        self.prefix = prefix
        self.matches = matches
        shown = ", ".join(matches[:5]) + (" ..." if len(matches) > 5 else "")
        super().__init__(
            f"execution id prefix '{prefix}' matches {len(matches)} executions: {shown}"
        )


class ExecutionNotRunning(StoreError):
    """A run that cannot be cancelled: it has ended (``status``: succeeded, failed, crashed...).

    A run whose runner had died is found so when the cancel looks it up, recorded as crashed
    (as every reader does), and ``owner_died`` is True then."""

    def __init__(self, execution_id: str, status: str, error: str | None = None, *,
                 owner_died: bool = False):  # fmt: skip
        self.execution_id, self.status, self.error = execution_id, status, error
        self.owner_died = owner_died
        if owner_died:
            detail = f"{error or 'its runner had died'}; it is recorded as crashed"
        else:
            detail = f"it has ended: {status}" + (f" ({error})" if error else "")
        super().__init__(f"execution '{execution_id}' is not running: {detail}")


class StoreUnavailable(StoreError):
    """The store cannot be used as it is: a file where a folder must be, a folder where its
    lock must be, a folder that is not writable. ``path`` is the culprit; the message says
    what to do. Found before a run starts, so no task runs unrecorded."""

    def __init__(self, store: object, path: object, problem: str):
        self.store, self.path, self.problem = store, path, problem
        super().__init__(f"the execution store {store} cannot be used: {problem}")


class StoreWriteFailed(StoreError):
    """Writing to the store failed (``errno``: ENOSPC for a full disk, EIO...): whatever was
    written before stays readable; a run that was being recorded is stopped."""

    def __init__(self, path: object, error: OSError):
        self.path, self.errno, self.strerror = path, error.errno, error.strerror
        super().__init__(f"cannot write {path}: [Errno {error.errno}] {error.strerror}")


class ConfigError(WorkflowError):
    """The project's configuration file cannot be read or has bad values, or a named project
    root is not a directory."""


class UnknownPlugin(WorkflowError):
    """No implementation is registered under a name; ``known`` lists the names there are."""

    def __init__(self, kind: str, name: str, known: Iterable[str]):
        self.kind, self.name, self.known = kind, name, sorted(known)
        super().__init__(f"unknown {kind} '{name}'; expected one of {', '.join(self.known)}")
