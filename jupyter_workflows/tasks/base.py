"""The contract between the engine and a task type: ``TaskType.run(task, ctx) -> TaskResult``.

The engine owns state, retries, timeouts, events and records; a task type only does its work.
Timeouts and cancellation reach a task type as ``asyncio.CancelledError``: a type that starts
processes must stop them before letting it propagate (``tasks.process`` does).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from ..errors import TaskTypeNotImplemented
from ..execution.states import State
from ..plugins import resolve
from .paths import PathPolicy, named_paths

if TYPE_CHECKING:
    from ..definition.model import TaskBase
    from ..definition.templates import Scope
    from ..execution.masking import Masker
    from .custody import ProcessCustody


@dataclass
class TaskResult:
    """What one attempt produced."""

    status: State = State.SUCCEEDED
    exit_code: int | None = 0
    result: Any = None
    outputs: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    # False when trying again cannot help (an HTTP 4xx, a missing file): no further attempts.
    retryable: bool = True
    # The infrastructure failed, not the task (a cluster worker died under it): tried again
    # without using the task's own retries (``infrastructure_retries``).
    infrastructure: bool = False

    @classmethod
    def failure(cls, error: str, exit_code: int | None = None) -> TaskResult:
        return cls(status=State.FAILED, exit_code=exit_code, error=error)


LineSink = Callable[[str, str], None]  # (stream, line)
# (step, total, label, status): a step of the attempt began or ended (a notebook cell).
ProgressSink = Callable[[int, "int | None", "str | None", str], None]
ChildRunner = Callable[..., Awaitable[Any]]
# (executor, worker, host): where the attempt runs, once it has started there.
PlacementSink = Callable[[str, "str | None", str], None]


@dataclass
class TaskContext:
    """Everything an attempt may use; built by the engine for each attempt."""

    execution_id: str
    task_id: str
    attempt: int
    project_root: Path
    env: Mapping[str, str]  # the complete process environment for this attempt
    scope: Scope  # what ${...} templates resolve against
    emit_line: LineSink
    output_file: Path  # $WORKFLOW_OUTPUT: KEY=VALUE lines become the task's outputs
    # A folder kept with this execution in the store (executed notebooks and other artifacts);
    # a temporary folder when the run is not recorded.
    artifacts_dir: Path
    emit_progress: ProgressSink = lambda step, total, label, status: None
    emit_placement: PlacementSink = lambda executor, worker, host: None
    kill_grace: float = 5.0
    # The attempt's time limit in seconds (the task's, else the workflow default), for types
    # that can pass it on (an HTTP client); the engine enforces it either way.
    timeout: float | None = None
    # Composite types run children through the engine: ``await ctx.run_child(task, child_id,
    # variables={...}, name=...)`` returns the child's TaskView (it never raises but on
    # cancellation); ``ctx.skip_child(task, child_id, reason, name=...)`` records one not run.
    run_child: ChildRunner | None = None
    skip_child: Callable[..., None] | None = None
    # The project's path policy (``tasks.paths``); read from its config on first use.
    paths: PathPolicy | None = None
    # The run's custody of processes (``tasks.custody``): a type that starts processes starts
    # them through it (``process.run_process(custody=...)`` does), so they are tagged, recorded
    # and die with the run; None outside a run.
    custody: ProcessCustody | None = None
    # The run's secrets masker (``execution.masking``): every event is masked by the engine
    # anyway; a type that reads raw output chunks masks them with ``masker.stream()`` so a
    # secret split across two chunks is caught. None: nothing to mask.
    masker: Masker | None = None

    def resolve_path(self, path: str | Path, field: str | None = None) -> Path:
        """``path`` resolved against the project root (not the workflow file's folder), ``..``
        and symlinks followed; ``PathRefused`` (naming this task and ``field``) when it leads
        outside the project and the folders its config allows."""
        if self.paths is None:
            self.paths = PathPolicy.for_project(self.project_root)
        return self.paths.resolve(path, task_id=self.task_id, field=field)


class ModelAt:
    """A task type's ``model`` given as ``"module:Class"`` text, imported when first read.

    Validation and the JSON Schema read a type's model; running a task does not (the engine
    may be given the task as plain objects: ``definition/plain.py``). A type whose own
    module imports nothing heavy and names its model this way runs tasks without importing
    pydantic."""

    def __init__(self, target: str) -> None:
        self.target = target

    def __get__(self, instance: object, owner: type) -> type[TaskBase]:
        return resolve(self.target)  # type: ignore[no-any-return]


def models_from(module: str, *names: str) -> Callable[[str], Any]:
    """A module ``__getattr__`` that gives ``names`` from ``module`` when first asked for, so
    that a type's module still offers its model by name (``tasks.shell.ShellTask``) while
    importing it, and pydantic with it, only then."""

    def __getattr__(name: str) -> Any:
        if name in names:
            return resolve(f"{module}:{name}")
        raise AttributeError(f"no attribute {name!r} (the models here: {', '.join(names)})")

    return __getattr__


class TaskType:
    """One kind of task. Subclasses set ``name`` and ``model`` and implement ``run``.

    ``model`` is the pydantic model of the task's fields in a workflow file (a ``TaskBase``
    subclass with ``type: Literal[name]``, or ``ModelAt`` naming one); validation, the JSON
    Schema and the engine all take it from here. The module declaring a type is imported to
    validate any workflow, so it imports nothing heavy: see ``DeferredTaskType``.
    """

    name: ClassVar[str] = ""
    model: ClassVar[type[TaskBase]]
    # The fields naming files or folders (dotted when nested): `workflow validate` checks
    # their literal values against the project's path policy (``tasks.paths``), and ``run``
    # resolves each through ``ctx.resolve_path``. Override ``path_fields`` for values that
    # hold a path inside other text (a URL, a volume spec).
    path_keys: ClassVar[tuple[str, ...]] = ()
    # Whether an attempt holds one of the run's max_parallel slots. Composite types do not:
    # their children take slots, and a parent holding one could deadlock them.
    uses_slot: ClassVar[bool] = True
    # Whether an executor may run attempts away from the engine (on a cluster worker).
    # Composite types run in the engine: their children are the engine's to schedule.
    remote: ClassVar[bool] = True

    async def run(self, task: TaskBase, ctx: TaskContext) -> TaskResult:
        raise NotImplementedError

    @classmethod
    def path_fields(cls, task: Mapping[str, Any]) -> Iterator[tuple[str, Any]]:
        """(field, path) for each path a task's raw data names (``path_keys`` by default)."""
        return named_paths(cls.path_keys, task)

    async def after_run(self) -> None:
        """Called once when a run that used this type ends (also when cancelled), on the
        run's event loop: release what belongs to that loop (pre-started kernels...)."""


class DeferredTaskType(TaskType):
    """A task type declared in a light module, its work done by a heavier class imported on
    the first run (``implementation = "module:Class"``, a ``TaskType``): validating a workflow
    never imports docker, papermill or the process machinery."""

    implementation: ClassVar[str] = ""

    def __init__(self) -> None:
        self._worker: TaskType | None = None

    def worker(self) -> TaskType:
        if self._worker is None:
            try:
                implementation = resolve(self.implementation)
            except ImportError as exc:  # a library the type needs is not installed
                reason = f"{self.implementation} cannot be imported: {exc}"
                raise TaskTypeNotImplemented(self.name, reason) from exc
            self._worker = implementation()
        return self._worker

    async def run(self, task: TaskBase, ctx: TaskContext) -> TaskResult:
        return await self.worker().run(task, ctx)

    async def after_run(self) -> None:
        if self._worker is not None:
            await self._worker.after_run()


def parse_result(stdout: str) -> Any:
    """A task's ``result``: its trimmed stdout, parsed when it is JSON."""
    text = stdout.strip()
    if not text:
        return None if not stdout else ""
    if text[0] in '{["-0123456789tfn':
        try:
            return json.loads(text)
        except ValueError:
            pass
    return text


def read_outputs(path: Path) -> dict[str, str]:
    """Parse a ``$WORKFLOW_OUTPUT`` file: ``KEY=VALUE`` lines and GitHub's ``KEY<<DELIM`` blocks."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return {}
    outputs: dict[str, str] = {}
    lines = iter(text.splitlines())
    for line in lines:
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            key, delimiter = line.split("<<", 1)
            block = []
            for body in lines:
                if body == delimiter:
                    break
                block.append(body)
            outputs[key.strip()] = "\n".join(block)
        elif "=" in line:
            key, value = line.split("=", 1)
            outputs[key.strip()] = value
    return outputs
