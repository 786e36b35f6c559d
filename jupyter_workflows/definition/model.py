"""The workflow file format, as pydantic models: the single source of truth.

Files written for the original (Node) orchestrator load unchanged. The JSON Schema that
``workflow schema`` prints is generated from these classes.

This module holds what every workflow has (``Workflow``, triggers, notifications, defaults)
and what every task has (``TaskBase``). Each task type declares its own model next to its
implementation (``tasks/shell.py``: ``ShellTask``) and registers it in
``plugins.TASK_TYPES``; ``Task`` is a task of any registered type, validated as the union
of them discriminated on ``type`` (same errors, same locations) by the model its ``type``
names, whose validator is built the first time a task of that type is seen: a workflow of
shell tasks never builds the other types' validators. ``json_schema`` writes the union. A
task type installed by another package (entry point ``jupyter_workflows.tasks``) joins the
same way.

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

from collections.abc import Iterator
from datetime import date
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
    field_validator,
    model_validator,
)

from ..errors import UnknownPlugin
from ..plugins import ALERT_CHANNELS, TASK_TYPES
from . import validator_cache
from .durations import UNIT_MILLISECONDS, UNIT_SECONDS, parse_duration

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


def _seconds(value: Any) -> float:
    return parse_duration(value, unit=UNIT_SECONDS)


def _milliseconds(value: Any) -> float:
    return parse_duration(value, unit=UNIT_MILLISECONDS)


Seconds = Annotated[
    float,
    BeforeValidator(_seconds),
    _duration_schema('Seconds as a number, or a string with units ("10s", "5m").'),
]
Milliseconds = Annotated[
    float,
    BeforeValidator(_milliseconds),
    _duration_schema('Milliseconds as a number, or a string with units ("500ms", "10s").'),
]


def _env_text(value: Any) -> Any:
    if value is None:  # YAML's `KEY:` with nothing after it
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    return value  # anything else (a list, a mapping) is left for validation to reject


def _stringify(value: Any) -> Any:
    """Environment values are strings to a process; accept YAML numbers, booleans and nulls."""
    if isinstance(value, dict):
        return {k: _env_text(v) for k, v in value.items()}
    return value


EnvMap = Annotated[dict[str, str], BeforeValidator(_stringify)]


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


class Retry(Strict):
    """How to try a failing task again."""

    attempts: int = Field(1, ge=1, description="Total attempts, the first one included.")
    delay: Milliseconds = Field(1.0, description="Wait before the second attempt (number: ms).")
    backoff: float = Field(
        2.0, ge=1.0, description="Multiplier of the delay after each attempt (1 = fixed delay)."
    )
    max_delay: Milliseconds = Field(300.0, description="Upper bound of one wait (number: ms).")
    jitter: float = Field(
        0.0, ge=0.0, le=1.0, description="Randomise each wait by up to this fraction (0.1 = 10%)."
    )

    @field_validator("backoff", mode="before")
    @classmethod
    def _named_backoff(cls, value: Any) -> Any:
        names = {"fixed": 1.0, "none": 1.0, "constant": 1.0, "exponential": 2.0}
        if isinstance(value, str) and value.lower() in names:
            return names[value.lower()]
        return value

    @field_validator("jitter", mode="before")
    @classmethod
    def _bool_jitter(cls, value: Any) -> Any:
        if value is True:
            return 0.2
        if value is False:
            return 0.0
        return value

    def delay_before(self, attempt: int) -> float:
        """Seconds to wait before ``attempt`` (2 = the first retry), without jitter."""
        try:
            return min(self.delay * self.backoff ** max(attempt - 2, 0), self.max_delay)
        except OverflowError:  # backoff ** attempts beyond any float: long past max_delay
            return self.max_delay


class Cache(Strict):
    """When a task may be skipped, its last successful result reused (``cache:``)."""

    inputs: list[str] = Field(
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

    @field_validator("inputs")
    @classmethod
    def _inside_the_project(cls, patterns: list[str]) -> list[str]:
        return project_globs(patterns, "input pattern", "data/*.csv")


def project_globs(patterns: list[str], what: str, example: str) -> list[str]:
    """``patterns`` when each is a glob inside the project; else ValueError saying so."""
    for pattern in patterns:
        parts = pattern.strip().replace("\\", "/").split("/")
        if not pattern.strip() or pattern.strip().startswith("/") or ".." in parts:
            raise ValueError(
                f"{what} '{pattern}' must be a glob relative to the project root "
                f"(no leading '/', no '..'), e.g. '{example}'"
            )
    return patterns


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


class TaskBase(Strict):
    """Fields every task type has. A task type's model subclasses it and narrows ``type`` to
    its name (``type: Literal["shell"]``)."""

    type: str
    id: Annotated[str, Field(pattern=TASK_ID_PATTERN)] | None = Field(
        None, description="Unique id (letters, digits, - and _). Required for top-level tasks."
    )
    name: str | None = None
    depends_on: list[str] = Field(default_factory=list)
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

    @field_validator("depends_on", mode="before")
    @classmethod
    def _single_dependency(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @property
    def cache_config(self) -> Cache | None:
        """The task's cache settings (``cache: true`` is a cache with no inputs), or None."""
        if self.cache is True:
            return Cache()
        return self.cache or None

    @property
    def gate(self) -> str | None:
        """The condition deciding whether the task runs at all (a conditional's selects a
        branch instead, so it has none)."""
        return self.condition

    @property
    def exclusive(self) -> bool:
        """Whether the task must run with no other top-level task running (``parallel:
        false``)."""
        return self.parallel is False

    def callbacks(self, succeeded: bool) -> list[Union[str, TaskBase]]:
        """The callbacks to run after this task ended so: top-level task ids and inline tasks."""
        named: Any = self.on_success if succeeded else self.on_failure
        if named is None:
            return []
        return list(named) if isinstance(named, list) else [named]


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

    @model_validator(mode="after")
    def _native_type(self) -> CronTrigger:
        self.type = "cron"
        return self


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

    @model_validator(mode="after")
    def _tolerance_needs_a_timestamp(self) -> WebhookConfig:
        if self.signature == "github" and "tolerance" in self.model_fields_set:
            raise ValueError(
                "'tolerance' applies to timestamped signatures (signature: stripe or slack); "
                "github signatures carry no time"
            )
        return self


class WebhookTrigger(Strict):
    type: Literal["webhook"]
    config: WebhookConfig


class FileChangeConfig(Strict):
    files: list[str] = Field(min_length=1)
    ignore: list[str] = Field(default_factory=list)
    debounce: Milliseconds = 0.3
    schedule: str | None = Field(None, description=_UNUSED)
    webhook: str | None = Field(None, description=_UNUSED)

    @field_validator("files", "ignore")
    @classmethod
    def _inside_the_project(cls, patterns: list[str]) -> list[str]:
        return project_globs(patterns, "pattern", "src/**/*.ts")


class FileChangeTrigger(Strict):
    type: Literal["file_change"]
    config: FileChangeConfig


Trigger = Annotated[
    Union[ManualTrigger, CronTrigger, WebhookTrigger, FileChangeTrigger],
    Field(discriminator="type"),
]


def _known_channel(name: str) -> str:
    if name.strip().lower() not in ALERT_CHANNELS:
        raise ValueError(str(UnknownPlugin(ALERT_CHANNELS.kind, name, ALERT_CHANNELS.names())))
    return name


ChannelName = Annotated[str, AfterValidator(_known_channel)]


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


def _js_condition(text: str) -> str:
    from ..errors import ExpressionError
    from .js_conditions import parse_js_condition

    try:
        parse_js_condition(text)
    except ExpressionError as exc:
        raise ValueError(f"invalid condition: {exc.reason} at position {exc.position}") from None
    return text


def _js_template(text: str) -> str:
    from ..errors import ExpressionError
    from .js_conditions import check_template

    try:
        check_template(text)
    except ExpressionError as exc:
        raise ValueError(f"invalid template: {exc.reason} at position {exc.position}") from None
    return text


class AlertRule(Strict):
    """One alert of the workflow: when ``condition`` holds for a finished run, ``template``
    (rendered) goes to ``channels``."""

    name: str = Field(min_length=1)
    condition: Annotated[str, AfterValidator(_js_condition)] = Field(
        description="JavaScript-style: execution.status === 'failed', metrics.successRate < 90, "
        "execution.duration > workflow.expected_duration * 2 (durations in milliseconds)."
    )
    channels: list[ChannelName] = Field(default_factory=_console_only)
    template: Annotated[str, AfterValidator(_js_template)] = Field(
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


class Workflow(Strict):
    """A workflow definition: a DAG of tasks plus how it is triggered and reported."""

    schema_: str | None = Field(None, alias="$schema")
    name: str = Field(min_length=1)
    version: str | None = None
    description: str | None = None
    trigger: Trigger | None = None
    tasks: list[Task] = Field(min_length=1)
    notifications: Notifications | None = None
    defaults: Defaults = Field(default_factory=Defaults)
    environment: EnvMap = Field(
        default_factory=dict,
        description="Environment of every task: the original format's defaults.environment.",
    )
    expected_duration: Milliseconds | None = Field(
        None, description="How long a run should take (number: milliseconds, as the original)."
    )
    alerts: list[AlertRule] | None = Field(
        None,
        description="Alert rules of this workflow; when given, they replace the built-in "
        "failure, success-rate and duration rules for its runs.",
    )
    secrets: list[SecretName] = Field(
        default_factory=list,
        description="Names of the secrets this workflow needs besides those its ${secret.NAME} "
        "references name. Each may also come from the plain environment variable NAME, and "
        "that variable's value is masked in every log, record and alert.",
    )

    @field_validator("environment")
    @classmethod
    def _into_defaults(cls, value: dict[str, str], info: ValidationInfo) -> dict[str, str]:
        defaults = info.data.get("defaults")
        if value and isinstance(defaults, Defaults):
            clash = [k for k in value if defaults.environment.get(k, value[k]) != value[k]]
            if clash:
                raise ValueError(
                    f"'{clash[0]}' is set both here and in defaults.environment, differently; "
                    "keep one"
                )
            defaults.environment = {**value, **defaults.environment}
        return value

    @field_validator("alerts")
    @classmethod
    def _unique_alert_names(cls, value: list[AlertRule] | None) -> list[AlertRule] | None:
        names = [rule.name for rule in value or ()]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"alert name '{repeated[0]}' is used twice; names must differ")
        return value

    @field_validator("version", mode="before")
    @classmethod
    def _version_text(cls, value: Any) -> Any:
        # YAML reads `version: 1.0` as a number and `version: 2024-01-01` as a date.
        if isinstance(value, (int, float, date)) and not isinstance(value, bool):
            return str(value)
        return value

    @classmethod
    def model_validate(cls, obj: Any, **kwargs: Any) -> Workflow:  # type: ignore[override]
        ensure_task_types(obj)
        return super().model_validate(obj, **kwargs)

    def __init__(self, **data: Any) -> None:
        ensure_task_types(data)
        super().__init__(**data)

    def task(self, task_id: str) -> AnyTask:
        for task in self.tasks:
            if task.id == task_id:
                return task
        raise KeyError(task_id)

    def callback_ids(self) -> set[str]:
        """Ids of the top-level tasks named as another top-level task's on_success or
        on_failure: they run only as callbacks, never in the graph."""
        names: set[str] = set()
        for task in self.tasks:
            for outcome in (True, False):
                names.update(c for c in task.callbacks(outcome) if isinstance(c, str))
        return names


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
