"""The workflow file format, as pydantic models: the single source of truth.

Files written for the original (Node) orchestrator load unchanged. The JSON Schema that
``workflow schema`` prints is generated from these classes.

Units follow the original format: a task ``timeout`` given as a number is in seconds, a
``retry.delay`` (and ``max_delay``) given as a number is in milliseconds; strings with units
("500ms", "10s", "5m") are accepted everywhere. Internally every duration is seconds.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal, Union

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
    field_validator,
    model_validator,
)

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
    # defer_build: only the Workflow validator is ever built (on first use), and it holds every
    # task type once; building each recursive model eagerly cost ~90 ms of start-up.
    model_config = ConfigDict(extra="forbid", populate_by_name=True, defer_build=True)


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
        return min(self.delay * self.backoff ** max(attempt - 2, 0), self.max_delay)


class TaskBase(Strict):
    """Fields every task type has."""

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
    on_failure: Union[str, Task, None] = Field(
        None, description="Task id (or an inline task) to run when this task fails."
    )

    @field_validator("depends_on", mode="before")
    @classmethod
    def _single_dependency(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @property
    def gate(self) -> str | None:
        """The condition deciding whether the task runs at all (a conditional's selects a
        branch instead, so it has none)."""
        return self.condition


class ShellTask(TaskBase):
    type: Literal["shell"]
    command: str
    shell: str = Field("/bin/sh", description="The shell that runs the command.")


class PythonTask(TaskBase):
    type: Literal["python"]
    script: str | None = None
    code: str | None = None
    args: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _script_or_code(self) -> PythonTask:
        if (self.script is None) == (self.code is None):
            raise ValueError("a python task needs exactly one of 'script' (a file) or 'code'")
        return self


class JavaScriptTask(TaskBase):
    type: Literal["javascript"]
    script: str
    args: list[str] = Field(default_factory=list)


class HttpTask(TaskBase):
    type: Literal["http"]
    url: str
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"] = "GET"
    headers: dict[str, str] = Field(default_factory=dict)
    query: dict[str, Any] = Field(default_factory=dict)
    body: Any = None
    json_body: Any = Field(None, alias="json")
    expected_status: Union[int, list[int], None] = Field(
        None, description="Status code(s) that count as success; default any 2xx."
    )
    follow_redirects: bool = True

    @field_validator("method", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value


class DockerTask(TaskBase):
    """Build an image (dockerfile/context/tags) or run a container (image/command), or both."""

    type: Literal["docker"]
    dockerfile: str | None = None
    context: str | None = None
    tags: list[str] = Field(default_factory=list)
    build_args: EnvMap = Field(default_factory=dict)
    image: str | None = None
    command: Union[str, list[str], None] = None
    volumes: list[str] = Field(default_factory=list)
    working_dir: str | None = None

    @model_validator(mode="after")
    def _build_or_run(self) -> DockerTask:
        if not (self.dockerfile or self.context or self.image):
            raise ValueError(
                "a docker task needs 'dockerfile'/'context' to build or 'image' to run"
            )
        return self


class FileInput(Strict):
    type: Literal["file"] = "file"
    path: str = Field(description="A glob, relative to the project root.")


class Processor(Strict):
    type: Literal["javascript", "python"] = "javascript"
    script: str


class FileOutput(Strict):
    type: Literal["file"] = "file"
    path: str = Field(description="${input} is the input file's name without extension.")


class DataProcessorTask(TaskBase):
    type: Literal["data_processor"]
    input: FileInput
    processor: Processor
    output: FileOutput | None = None
    max_parallel: int = Field(4, ge=1)


class DatabaseConfig(Strict):
    connection: str = Field(description="sqlite:///path, duckdb:///path or postgresql://...")
    operation: Literal["query", "migration", "transaction"] = "query"
    query: str | None = None
    queries: list[str] = Field(default_factory=list)
    params: Union[list[Any], dict[str, Any], None] = None
    migrations_path: str | None = None
    rollback_on_failure: bool = True

    @model_validator(mode="after")
    def _operation_needs(self) -> DatabaseConfig:
        needs = {
            "query": self.query,
            "migration": self.migrations_path,
            "transaction": self.queries,
        }
        if not needs[self.operation]:
            field = {"query": "query", "migration": "migrations_path", "transaction": "queries"}
            raise ValueError(f"operation '{self.operation}' needs '{field[self.operation]}'")
        return self


class DatabaseTask(TaskBase):
    type: Literal["database"]
    config: DatabaseConfig


class ConditionalTask(TaskBase):
    type: Literal["conditional"]
    condition: str
    then: Task
    else_: Task | None = Field(None, alias="else")

    @property
    def gate(self) -> str | None:
        return None


class ParallelTask(TaskBase):
    type: Literal["parallel"]
    tasks: list[Task] = Field(min_length=1)
    wait_for: Literal["all", "any"] = "all"
    max_parallel: int | None = Field(None, ge=1)


class LoopTask(TaskBase):
    type: Literal["loop"]
    items: Union[list[Any], str] = Field(
        description='A list, or an expression giving one (e.g. "${tasks.list.result}").'
    )
    item: Annotated[str, Field(pattern=TASK_ID_PATTERN)] = "item"
    then: Task
    stop_on_failure: bool = False
    max_parallel: int = Field(1, ge=1)


class NotebookTask(TaskBase):
    """Execute a notebook with papermill, keeping the executed copy per execution."""

    type: Literal["notebook"]
    notebook: str = Field(description="Input notebook, relative to the project root.")
    parameters: dict[str, Any] = Field(default_factory=dict)
    kernel: str | None = None
    output: str | None = Field(None, description="Where to write the executed notebook.")
    reuse_kernel: bool = Field(
        False,
        description="Share one kernel (per kernel name and cwd) between notebook tasks, its "
        "namespace reset between them: much faster, but imported modules and process state "
        "carry over.",
    )


Task = Annotated[
    Union[
        ShellTask,
        PythonTask,
        JavaScriptTask,
        HttpTask,
        DockerTask,
        DataProcessorTask,
        DatabaseTask,
        ConditionalTask,
        ParallelTask,
        LoopTask,
        NotebookTask,
    ],
    Field(discriminator="type"),
]

TASK_TYPES: tuple[str, ...] = (
    "shell", "python", "javascript", "http", "docker", "data_processor", "database",
    "conditional", "parallel", "loop", "notebook",
)  # fmt: skip


class ManualTrigger(Strict):
    type: Literal["manual"]
    config: dict[str, Any] = Field(default_factory=dict)


class CronConfig(Strict):
    schedule: str
    timezone: str | None = None
    overlap: Literal["skip", "queue", "allow"] = "skip"
    catchup: Literal["none", "latest", "all"] = "none"
    max_catchup: int = Field(100, ge=1)


class CronTrigger(Strict):
    type: Literal["cron"]
    config: CronConfig


class WebhookConfig(Strict):
    webhook: str = Field(description="The path to serve, e.g. /trigger/deploy.")
    secret_env: str | None = Field(None, description="Environment variable holding the secret.")


class WebhookTrigger(Strict):
    type: Literal["webhook"]
    config: WebhookConfig


class FileChangeConfig(Strict):
    files: list[str] = Field(min_length=1)
    ignore: list[str] = Field(default_factory=list)
    debounce: Milliseconds = 0.3

    @field_validator("files", "ignore")
    @classmethod
    def _inside_the_project(cls, patterns: list[str]) -> list[str]:
        for pattern in patterns:
            parts = pattern.strip().replace("\\", "/").split("/")
            if not pattern.strip() or pattern.strip().startswith("/") or ".." in parts:
                raise ValueError(
                    f"pattern '{pattern}' must be a glob relative to the project root "
                    "(no leading '/', no '..'), e.g. 'src/**/*.ts'"
                )
        return patterns


class FileChangeTrigger(Strict):
    type: Literal["file_change"]
    config: FileChangeConfig


Trigger = Annotated[
    Union[ManualTrigger, CronTrigger, WebhookTrigger, FileChangeTrigger],
    Field(discriminator="type"),
]


class Notifications(Strict):
    channels: list[str] = Field(default_factory=lambda: ["console"])
    on_completion: bool = False
    on_failure: bool = True


class Defaults(Strict):
    """Values every task gets unless it sets its own."""

    environment: EnvMap = Field(default_factory=dict)
    timeout: Seconds | None = None
    retry: Retry | None = None
    max_parallel: int | None = Field(None, ge=1)


class Workflow(Strict):
    """A workflow definition: a DAG of tasks plus how it is triggered and reported."""

    schema_: str | None = Field(None, alias="$schema")
    name: str = Field(min_length=1)
    version: str | None = None
    description: str | None = None
    trigger: Trigger | None = None
    tasks: list[Task] = Field(min_length=1)
    notifications: Notifications | None = None
    defaults: Defaults = Field(default_factory=lambda: Defaults())
    expected_duration: Seconds | None = None

    @field_validator("version", mode="before")
    @classmethod
    def _version_text(cls, value: Any) -> Any:
        # YAML reads `version: 1.0` as a number and `version: 2024-01-01` as a date.
        if isinstance(value, (int, float, date)) and not isinstance(value, bool):
            return str(value)
        return value

    def task(self, task_id: str) -> AnyTask:
        for task in self.tasks:
            if task.id == task_id:
                return task
        raise KeyError(task_id)


AnyTask = Union[
    ShellTask, PythonTask, JavaScriptTask, HttpTask, DockerTask, DataProcessorTask, DatabaseTask,
    ConditionalTask, ParallelTask, LoopTask, NotebookTask,
]  # fmt: skip


def json_schema() -> dict[str, Any]:
    """The JSON Schema of a workflow file (what editors validate against)."""
    schema = Workflow.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "jupyter-workflows workflow definition"
    return schema
