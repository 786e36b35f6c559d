"""The workflow file format, as pydantic models: the single source of truth.

Files written for the original (Node) orchestrator load unchanged. The JSON Schema that
``workflow schema`` prints is generated from these classes.

This module holds what every workflow has (``Workflow``, triggers, notifications, defaults)
and what every task has (``TaskBase``). Each task type declares its own model in a module of
its own that the type names (``tasks/http_model.py``: ``HttpTask``, named by
``tasks/http.py``) and registers it in ``plugins.TASK_TYPES``; ``Task`` is a task of any
registered type, validated as the union of them discriminated on ``type`` (same errors, same
locations) by the model its ``type`` names, whose validator is built the first time a task of
that type is seen: a workflow of shell tasks never builds the other types' validators.
``json_schema`` writes the union. A task type installed by another package (entry point
``jupyter_workflows.tasks``) joins the same way. The methods the engine calls on a workflow or
a task are in ``behaviour.py``.

Units follow the original format: a task ``timeout`` given as a number is in seconds, but an
http task's ``timeout``, a ``retry.delay`` (and ``max_delay``) and ``expected_duration`` given
as numbers are in milliseconds (the original hands them to its HTTP client and timers as they
are); strings with units ("500ms", "10s", "5m") are accepted everywhere. Internally every
duration is seconds.

Spellings only the original format has (a workflow-level ``environment``, a ``schedule``
trigger, a loop's ``task``, docker fields under ``config``...) are fields here too, so the JSON
Schema shows them and errors point at what the user wrote; validators turn them into the
native form, which is all the engine reads. ``original.py`` lists them for ``--strict``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeAlias, Union

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    StringConstraints,
    ValidationInfo,
    WithJsonSchema,
    model_validator,
)

from ..plugins import TASK_TYPES
from . import field_checks, validator_cache
from .behaviour import RetryBehaviour, TaskBehaviour, WorkflowBehaviour

TASK_ID_PATTERN = r"^[A-Za-z0-9_-]+$"


def _duration_schema(description: str) -> WithJsonSchema:
    return WithJsonSchema(
        {
            "anyOf": [
                {"type": "number", "minimum": 0},
                {"type": "string", "pattern": r"^\s*(\d+(\.\d+)?\s*(ms|sec|min|s|m|h|d)?\s*)+$"},
            ],
            "description": description,
        }
    )


Seconds = Annotated[
    float,
    BeforeValidator(field_checks.seconds),
    _duration_schema('Seconds as a number, or a string with units ("10s", "5m").'),
]
Milliseconds = Annotated[
    float,
    BeforeValidator(field_checks.milliseconds),
    _duration_schema('Milliseconds as a number, or a string with units ("500ms", "10s").'),
]


EnvMap = Annotated[dict[str, str], BeforeValidator(field_checks.environment_text)]


class _ModelRule:
    """A whole-model rule from field_checks, applied to a validated model's fields.

    An instance, not a closure, so that a kept validator (validator_cache.py) can name it;
    ``__rule__`` lets the acceptance check apply the same rule to plain data."""

    def __init__(self, rule: Callable[[dict[str, Any], set[str]], None]) -> None:
        self.__rule__ = rule

    def __call__(self, model: BaseModel) -> BaseModel:
        fields = dict(model.__dict__)
        self.__rule__(fields, model.model_fields_set)
        for name, value in fields.items():
            if value is not model.__dict__[name]:
                setattr(model, name, value)  # as the model's own code would: counted as set
        return model

    def __reduce__(self) -> tuple[Any, ...]:
        return (_ModelRule, (self.__rule__,))


def model_rule(rule: Callable[[dict[str, Any], set[str]], None]) -> Any:
    """A model validator (after) applying ``rule`` (from field_checks)."""
    return model_validator(mode="after")(_ModelRule(rule))  # type: ignore[call-overload]


class Strict(BaseModel):
    # defer_build: a model's validator is built the first time it is used (the workflow's, then
    # each task type's as a task of it is met); building them all eagerly cost ~90 ms of start-up.
    model_config = ConfigDict(extra="forbid", populate_by_name=True, defer_build=True)

    @classmethod
    def model_rebuild(
        cls,
        *,
        force: bool = False,
        raise_errors: bool = True,
        _parent_namespace_depth: int = 2,
        _types_namespace: Any = None,
    ) -> bool | None:
        # Every deferred build comes through here (pydantic calls it on first use): a validator
        # kept by an earlier process is restored instead of built (validator_cache.py).
        if not force and not cls.__pydantic_complete__ and validator_cache.restore(cls):
            return None
        depth = _parent_namespace_depth + 1 if _parent_namespace_depth > 0 else 0
        built = super().model_rebuild(
            force=force,
            raise_errors=raise_errors,
            _parent_namespace_depth=depth,
            _types_namespace=_types_namespace,
        )
        if built:
            validator_cache.keep(cls)
        return built


class Retry(Strict, RetryBehaviour):
    """How to try a failing task again."""

    attempts: int = Field(1, ge=1, description="Total attempts, the first one included.")
    delay: Milliseconds = Field(1.0, description="Wait before the second attempt (number: ms).")
    backoff: Annotated[float, BeforeValidator(field_checks.named_backoff)] = Field(
        2.0, ge=1.0, description="Multiplier of the delay after each attempt (1 = fixed delay)."
    )
    max_delay: Milliseconds = Field(300.0, description="Upper bound of one wait (number: ms).")
    jitter: Annotated[float, BeforeValidator(field_checks.boolean_jitter)] = Field(
        0.0, ge=0.0, le=1.0, description="Randomise each wait by up to this fraction (0.1 = 10%)."
    )


class Cache(Strict):
    """When a task may be skipped, its last successful result reused (``cache:``)."""

    inputs: Annotated[list[str], AfterValidator(field_checks.cache_inputs)] = Field(
        default_factory=list,
        description="Globs relative to the project root: the content of the files they match "
        "is part of the cache key.",
    )
    key: str | None = Field(
        None, description="An extra ${...} expression whose value is part of the cache key."
    )
    expire: Seconds | None = Field(
        None, gt=0, description='How old a cached result may be ("7d", "12h"; number: seconds).'
    )


class _AnyTaskType:
    """Pydantic metadata standing for "a task of any registered type".

    It validates like a union of the registered task models discriminated on ``type`` (the
    same errors, at the same locations, tag included), but dispatches on ``type`` itself, so
    that a task type's validator is built the first time a task of that type is validated:
    validating a workflow of shell tasks never builds the validators of the ten other types
    (building them all cost ~130 ms of every start). The JSON Schema is the union's.
    """

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> Any:
        from pydantic_core import core_schema

        return core_schema.with_info_plain_validator_function(validate_task)


def validate_task(value: Any, info: ValidationInfo) -> TaskBase:
    """A task from its definition: the model its ``type`` names validates it."""
    from pydantic_core import PydanticKnownError
    from pydantic_core import ValidationError as CoreValidationError

    if isinstance(value, TaskBase):
        return value  # a task model already (as the union let its members through)
    if not isinstance(value, dict):
        raise PydanticKnownError("model_attributes_type")
    if "type" not in value:
        raise PydanticKnownError("union_tag_not_found", {"discriminator": "'type'"})
    tag = value["type"]
    model = _task_model(tag) if isinstance(tag, str) else None
    if model is None:
        expected = ", ".join(f"'{name}'" for name in TASK_TYPES.known_without_scan())
        raise PydanticKnownError(
            "union_tag_invalid",
            {"discriminator": "'type'", "tag": str(tag), "expected_tags": expected},
        )
    try:
        return model.model_validate(value, context=info.context)
    except CoreValidationError as exc:
        # Located as the discriminated union locates them: under the tag.
        errors = [{**e, "loc": (tag, *e["loc"])} for e in exc.errors(include_url=False)]
        try:
            tagged = CoreValidationError.from_exception_data(exc.title, errors)  # type: ignore[arg-type]
        except (KeyError, TypeError, ValueError):  # an error type it cannot rebuild
            raise exc from None
        raise tagged from None


_models_by_tag: dict[str, type[TaskBase]] = {}
_models_generation = -1


def _task_model(tag: str) -> type[TaskBase] | None:
    global _models_generation
    if _models_generation != TASK_TYPES.generation:
        _models_by_tag.clear()
        _models_generation = TASK_TYPES.generation
    model = _models_by_tag.get(tag)
    if model is None and tag in TASK_TYPES.known_without_scan():
        model = _models_by_tag[tag] = TASK_TYPES.load(tag).model
    return model


ANY_TASK_TYPE = _AnyTaskType()
if TYPE_CHECKING:
    Task: TypeAlias = "TaskBase"
else:  # no reference to TaskBase, which is defined below and uses it (on_failure)
    Task = Annotated[Any, ANY_TASK_TYPE]


class TaskBase(Strict, TaskBehaviour):
    """Fields every task type has. A task type's model subclasses it and narrows ``type`` to
    its name (``type: Literal["shell"]``)."""

    type: str
    id: Annotated[str, Field(pattern=TASK_ID_PATTERN)] | None = Field(
        None, description="Unique id (letters, digits, - and _). Required for top-level tasks."
    )
    name: str | None = None
    depends_on: Annotated[list[str], BeforeValidator(field_checks.one_or_many)] = Field(
        default_factory=list
    )
    timeout: Seconds | None = Field(None, description="Per attempt (number: seconds).")
    retry: Retry | None = None
    condition: str | None = Field(None, description="Run only when this expression is true.")
    environment: EnvMap = Field(default_factory=dict)
    cwd: str | None = Field(None, description="Working directory, relative to the project root.")
    live_output: bool = False
    continue_on_error: bool = Field(
        False, description="A failure of this task does not fail the run or skip its dependents."
    )
    resources: dict[str, Annotated[float, Field(gt=0)]] = Field(
        default_factory=dict,
        description='What one attempt needs, e.g. {"GPU": 1, "MEMORY": 4e9}: on Dask, worker '
        "resources (it runs only on workers that declared them); on this machine, limits on "
        "how many such attempts run at once (resources in workflows/config.json).",
    )
    infrastructure_retries: int | None = Field(
        None,
        ge=0,
        description="Attempts lost to the infrastructure (a cluster worker that died) tried "
        "again without using retry.attempts; default 2.",
    )
    on_failure: Union[str, list[str], Task, None] = Field(
        None,
        description="Task id(s), or an inline task, to run as callbacks when this task fails; "
        "a task named here runs only as a callback, and its failure does not fail the run.",
    )
    on_success: Union[str, list[str], Task, None] = Field(
        None,
        description="Task id(s), or an inline task, to run as callbacks when this task "
        "succeeds; a task named here runs only as a callback, and its failure does not fail "
        "the run.",
    )
    parallel: bool | None = Field(
        None,
        description="false: the task runs alone, never alongside another top-level task "
        "(default true).",
    )
    cache: Union[bool, Cache, None] = Field(
        None,
        description="Skip the task, reusing its last successful result, while its definition, "
        "its inputs, its key and its upstream tasks are unchanged (true, or inputs/key/expire).",
    )

    def _default_cache(self) -> Cache:
        return Cache()


AnyTask = TaskBase  # a task of some registered type, as the engine handles it


def task_models() -> dict[str, type[TaskBase]]:
    """Type name -> model of every task type known so far (built in, registered, and
    installed ones once ``plugins.TASK_TYPES`` has read the entry points)."""
    return {name: TASK_TYPES.load(name).model for name in TASK_TYPES.known_without_scan()}


# ``type`` values that name something other than a task (triggers, file inputs, processors).
_OTHER_TYPES = frozenset({"manual", "cron", "webhook", "file_change", "file"})


def ensure_task_types(data: Any) -> None:
    """Make the workflow model know every task type ``data`` names, before validating it.

    A type that is not built in sends the registry to the installed packages' entry points
    (once per process); tasks of the types found there validate from then on. A name found
    nowhere is left for validation to report, with the names there are.
    """
    known = set(TASK_TYPES.known_without_scan()) | _OTHER_TYPES
    if any(name not in known for name in _type_names(data)):
        TASK_TYPES.names()  # reads the entry points


def _type_names(data: Any) -> Iterator[str]:
    stack = [data]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            kind = node.get("type")
            if isinstance(kind, str):
                yield kind
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)


class ManualTrigger(Strict):
    type: Literal["manual"]
    config: dict[str, Any] = Field(default_factory=dict)


_UNUSED = (
    "Not used by this trigger type: the original format lets one config carry schedule, "
    "files and webhook together, and the trigger's type chooses which applies."
)


class CronConfig(Strict):
    schedule: str
    files: list[str] | None = Field(None, description=_UNUSED)
    webhook: str | None = Field(None, description=_UNUSED)
    timezone: str | None = None
    overlap: Literal["skip", "queue", "allow"] = "skip"
    catchup: Literal["none", "latest", "all"] = "none"
    max_catchup: int = Field(100, ge=1)


class CronTrigger(Strict):
    type: Literal["cron", "schedule"] = Field(
        description='"schedule" is the original format\'s name for "cron".'
    )
    config: CronConfig

    _native_type = model_rule(field_checks.cron_type)


DEFAULT_TOLERANCE = 300.0  # seconds a signed timestamp may differ from the server's clock
DEFAULT_REPLAY_WINDOW = 86400.0  # seconds a signed request is remembered


class WebhookConfig(Strict):
    webhook: str = Field(description="The path to serve, e.g. /trigger/deploy.")
    schedule: str | None = Field(None, description=_UNUSED)
    files: list[str] | None = Field(None, description=_UNUSED)
    secret_env: str | None = Field(None, description="Environment variable holding the secret.")
    signature: Literal["github", "stripe", "slack"] = Field(
        "github",
        description="How requests are signed: github (X-Hub-Signature-256), stripe "
        "(Stripe-Signature: t=...,v1=...) or slack (X-Slack-Signature and its timestamp).",
    )
    tolerance: Seconds = Field(
        DEFAULT_TOLERANCE,
        gt=0,
        description="stripe and slack: how far a request's timestamp may be from now (number: s).",
    )
    replay_window: Seconds = Field(
        DEFAULT_REPLAY_WINDOW,
        gt=0,
        description="How long a request is remembered: the same signature or delivery id again "
        "within it is answered with the first run (number: seconds).",
    )

    _tolerance_needs_a_timestamp = model_rule(field_checks.tolerance_needs_a_timestamp)


class WebhookTrigger(Strict):
    type: Literal["webhook"]
    config: WebhookConfig


class FileChangeConfig(Strict):
    files: Annotated[list[str], AfterValidator(field_checks.watched_files)] = Field(min_length=1)
    ignore: Annotated[list[str], AfterValidator(field_checks.watched_files)] = Field(
        default_factory=list
    )
    debounce: Milliseconds = 0.3
    schedule: str | None = Field(None, description=_UNUSED)
    webhook: str | None = Field(None, description=_UNUSED)


class FileChangeTrigger(Strict):
    type: Literal["file_change"]
    config: FileChangeConfig


Trigger = Annotated[
    Union[ManualTrigger, CronTrigger, WebhookTrigger, FileChangeTrigger],
    Field(discriminator="type"),
]


ChannelName = Annotated[str, AfterValidator(field_checks.known_channel)]


def _console_only() -> list[str]:
    # A named function, not a lambda: a kept validator refers to its default factories by name.
    return ["console"]


class Notifications(Strict):
    channels: list[ChannelName] = Field(
        default_factory=_console_only,
        description="Alert channels: console, slack, email, webhook, or one a plugin adds.",
    )
    on_completion: bool = False
    on_failure: bool = True


class AlertRule(Strict):
    """One alert of the workflow: when ``condition`` holds for a finished run, ``template``
    (rendered) goes to ``channels``."""

    name: str = Field(min_length=1)
    condition: Annotated[str, AfterValidator(field_checks.js_condition)] = Field(
        description="JavaScript-style: execution.status === 'failed', metrics.successRate < 90, "
        "execution.duration > workflow.expected_duration * 2 (durations in milliseconds)."
    )
    channels: list[ChannelName] = Field(default_factory=_console_only)
    template: Annotated[str, AfterValidator(field_checks.js_template)] = Field(
        description="The message: ${workflow.name}, ${error.message}, ${metrics.successRate}, "
        "${execution.duration}..."
    )


SecretName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]+$")]


class Defaults(Strict):
    """Values every task gets unless it sets its own."""

    environment: EnvMap = Field(default_factory=dict)
    timeout: Seconds | None = None
    retry: Retry | None = None
    max_parallel: int | None = Field(None, ge=1)
    infrastructure_retries: int = Field(2, ge=0)


class Workflow(Strict, WorkflowBehaviour):
    """A workflow definition: a DAG of tasks plus how it is triggered and reported."""

    schema_: str | None = Field(None, alias="$schema")
    name: str = Field(min_length=1)
    version: Annotated[str | None, BeforeValidator(field_checks.version_text)] = None
    description: str | None = None
    trigger: Trigger | None = None
    tasks: list[Task] = Field(min_length=1)
    notifications: Notifications | None = None
    defaults: Defaults = Field(default_factory=Defaults)
    environment: Annotated[EnvMap, AfterValidator(field_checks.environment_into_defaults)] = Field(
        default_factory=dict,
        description="Environment of every task: the original format's defaults.environment.",
    )
    expected_duration: Milliseconds | None = Field(
        None, description="How long a run should take (number: milliseconds, as the original)."
    )
    alerts: Annotated[list[AlertRule] | None, AfterValidator(field_checks.unique_alert_names)] = (
        Field(
            None,
            description="Alert rules of this workflow; when given, they replace the built-in "
            "failure, success-rate and duration rules for its runs.",
        )
    )
    secrets: list[SecretName] = Field(
        default_factory=list,
        description="Names of the secrets this workflow needs besides those its ${secret.NAME} "
        "references name. Each may also come from the plain environment variable NAME, and "
        "that variable's value is masked in every log, record and alert.",
    )

    @classmethod
    def model_validate(cls, obj: Any, **kwargs: Any) -> Workflow:  # type: ignore[override]
        ensure_task_types(obj)
        return super().model_validate(obj, **kwargs)

    def __init__(self, **data: Any) -> None:
        ensure_task_types(data)
        super().__init__(**data)


def json_schema() -> dict[str, Any]:
    """The JSON Schema of a workflow file (what editors validate against), with every task
    type installed."""
    TASK_TYPES.names()
    ensure_task_types(None)
    schema = Workflow.model_json_schema(by_alias=True, schema_generator=_schema_generator())
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "jupyter-workflows workflow definition"
    return schema


def _schema_generator() -> Any:
    """A JSON Schema generator that writes a task of any type as the discriminated union of the
    task models (each a definition, recursion included), as pydantic writes such a union."""
    from pydantic.json_schema import CoreRef, GenerateJsonSchema

    class WorkflowJsonSchema(GenerateJsonSchema):
        def function_plain_schema(self, schema: Any) -> Any:
            if schema.get("function", {}).get("function") is not validate_task:
                return super().function_plain_schema(schema)
            refs, mapping = [], {}
            for name, model in task_models().items():
                core = model.__pydantic_core_schema__
                ref = core.get("ref")
                if ref is not None and (CoreRef(ref), self.mode) in self.core_to_defs_refs:
                    member = self.get_cache_defs_ref_schema(CoreRef(ref))[1]  # being written
                else:
                    if ref is not None:  # known before it is written: tasks inside it refer to it
                        self.get_cache_defs_ref_schema(CoreRef(ref))
                    member = self.generate_inner(core)
                refs.append(member)
                if "$ref" in member:
                    mapping[name] = member["$ref"]
            return {"discriminator": {"mapping": mapping, "propertyName": "type"}, "oneOf": refs}

    return WorkflowJsonSchema
