"""The REST handlers under ``{base_url}jupyter-workflows/api/``: thin adapters over the service.

Each handler parses its input, calls one ``WorkflowService`` method and writes JSON. Errors
(``base.answers``) become ``{"message": ...}`` with 400 (bad body or parameter), 404 (unknown
path, execution or task), 409 (cancel of a run that has ended, a resume refused) or 503
(too many runs, or a store that cannot be used: its message names the path and what to do);
anything unexpected is jupyter_server's usual 500, logged, and the server carries on. The lab
extension's ``src/api.ts`` is the client of the same contract.
"""

from __future__ import annotations

from typing import Any

from jupyter_server.auth.decorator import authorized
from tornado import web

from .base import API, WorkflowsHandler, answers
from .changes import ChangesHandler
from .events import EventsHandler
from .executions import ExecutionQuery, int_param, since_param
from .service import ApiError, WorkflowService


class WorkflowListHandler(WorkflowsHandler):
    @web.authenticated
    @authorized
    @answers
    async def get(self) -> None:
        self.reply(await self.service.workflows())


class ValidateHandler(WorkflowsHandler):
    @web.authenticated
    @authorized("read")
    @answers
    async def post(self) -> None:
        self.reply(await self.service.validate(self.body(("path",))["path"]))


class RunsHandler(WorkflowsHandler):
    @web.authenticated
    @authorized("execute")
    @answers
    async def post(self) -> None:
        data = self.body(("path", "env", "params"))
        params = _params(data.get("params"))
        options = {"params": params} if params else {}
        self.reply(await self.service.submit(data["path"], _env(data.get("env")), **options), 202)


def _params(value: Any) -> dict[str, Any]:
    """The run's parameters: an object of names to JSON values (typed as given)."""
    from ..ui.options import check_parameter_name

    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ApiError(400, "'params' must be an object of parameter names to values")
    try:
        for name in value:
            check_parameter_name(name, "'params'")
    except ValueError as exc:
        raise ApiError(400, str(exc)) from None
    return dict(value)


def _env(value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ApiError(400, "'env' must be an object of names to string values")
    for key, item in value.items():
        if not isinstance(item, str):
            raise ApiError(400, f"'env': the value of '{key}' must be a string")
    return dict(value)


class CancelHandler(WorkflowsHandler):
    @web.authenticated
    @authorized("execute")
    @answers
    async def post(self, execution_id: str) -> None:
        outcome = await self.service.cancel(execution_id)
        # 200: recorded cancelled; 202: asked, and still stopping when the wait ran out.
        self.reply(outcome, 200 if outcome["cancelled"] else 202)


class ResumeHandler(WorkflowsHandler):
    @web.authenticated
    @authorized("execute")
    @answers
    async def post(self, execution_id: str) -> None:
        data = self.body(("from", "only", "env"), path=False)
        for key in ("from", "only"):
            if data.get(key) is not None and not isinstance(data[key], str):
                raise ApiError(400, f"'{key}' must be a task id")
        resumed = await self.service.resume(
            execution_id, from_task=data.get("from"), only=data.get("only"),
            env=_env(data.get("env")),
        )  # fmt: skip
        self.reply(resumed, 202)


class ExecutionListHandler(WorkflowsHandler):
    @web.authenticated
    @authorized
    @answers
    async def get(self) -> None:
        self.reply(await self.service.executions(ExecutionQuery.from_args(self.arg)))


class ExecutionHandler(WorkflowsHandler):
    @web.authenticated
    @authorized
    @answers
    async def get(self, execution_id: str) -> None:
        logs = int_param(self.arg("logs"), "logs", 20, 0, 10_000)
        self.reply(await self.service.execution(execution_id, logs))


class TaskLogHandler(WorkflowsHandler):
    @web.authenticated
    @authorized
    @answers
    async def get(self, execution_id: str, task_id: str) -> None:
        tail = int_param(self.arg("tail"), "tail", 500, 1, 100_000)
        self.reply(await self.service.task_log(execution_id, task_id, tail))


class NotebookHandler(WorkflowsHandler):
    @web.authenticated
    @authorized("write")
    @answers
    async def post(self, execution_id: str, task_id: str) -> None:
        self.reply(await self.service.open_notebook(execution_id, task_id))


class HealthHandler(WorkflowsHandler):
    @web.authenticated
    @authorized
    @answers
    async def get(self) -> None:
        since = since_param(self.arg("since"))
        self.reply(await self.service.health(self.arg("workflow") or None, since))


def routes(service: WorkflowService) -> list[tuple[str, type[WorkflowsHandler], dict[str, Any]]]:
    """URL patterns (without the base URL) and their handlers."""
    execution = rf"{API}/executions/([^/]+)"
    patterns: list[tuple[str, type[WorkflowsHandler]]] = [
        (rf"{API}/workflows", WorkflowListHandler),
        (rf"{API}/validate", ValidateHandler),
        (rf"{API}/runs", RunsHandler),
        (rf"{API}/executions", ExecutionListHandler),
        (rf"{API}/events", ChangesHandler),
        (execution, ExecutionHandler),
        (rf"{execution}/cancel", CancelHandler),
        (rf"{execution}/resume", ResumeHandler),
        (rf"{execution}/events", EventsHandler),
        (rf"{execution}/tasks/([^/]+)/log", TaskLogHandler),
        (rf"{execution}/tasks/([^/]+)/notebook", NotebookHandler),
        (rf"{API}/health", HealthHandler),
    ]
    return [(pattern, handler, {"service": service}) for pattern, handler in patterns]
