"""The REST handlers under ``{base_url}jupyter-workflows/api/``: thin adapters over the service.

Each handler parses its input, calls one ``WorkflowService`` method and writes JSON. Errors
become ``{"message": ...}`` with 400 (bad body or parameter), 404 (unknown path, execution or
task), 409 (cancel of a run not running here) or 503 (too many runs); anything unexpected is
jupyter_server's usual 500, logged, and the server carries on. The lab extension's
``src/api.ts`` is the client of the same contract.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler
from tornado import web

from ..errors import AmbiguousExecutionId, ConfigError, ExecutionNotFound, StoreError
from .executions import BadParameter, ExecutionQuery, int_param, since_param
from .service import ApiError, WorkflowService

API = "jupyter-workflows/api"
AUTH_RESOURCE = "jupyter_workflows"


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()  # as `workflow monitor --json` writes them
    return str(value)


def to_json(data: Any) -> str:
    return json.dumps(data, default=_jsonable)


def answers(
    method: Callable[..., Awaitable[None]],
) -> Callable[..., Awaitable[None]]:
    """Turn the errors a client can act on into JSON answers with the right status."""

    @functools.wraps(method)
    async def wrapper(self: WorkflowsHandler, *args: Any) -> None:
        try:
            await method(self, *args)
        except ApiError as exc:
            self.reply({"message": exc.message, **exc.extra}, exc.status)
        except BadParameter as exc:
            self.reply({"message": str(exc)}, 400)
        except (ExecutionNotFound, AmbiguousExecutionId) as exc:
            self.reply({"message": str(exc)}, 404)
        except (ConfigError, StoreError) as exc:  # the server's side: say what, not a traceback
            self.log.error("jupyter-workflows: %s", exc)
            self.reply({"message": str(exc)}, 500)

    return wrapper


class WorkflowsHandler(APIHandler):
    """Base of the handlers: the service, JSON replies and request bodies."""

    auth_resource = AUTH_RESOURCE
    service: WorkflowService

    def initialize(self, service: WorkflowService) -> None:
        self.service = service

    def reply(self, data: Any, status: int = 200) -> None:
        self.set_status(status)
        self.finish(to_json(data))

    def body(self, allowed: tuple[str, ...]) -> dict[str, Any]:
        """The request body as a JSON object with only ``allowed`` fields (else ApiError 400)."""
        if not self.request.body.strip():
            raise ApiError(
                400, 'the request body is empty; expected a JSON object like {"path": ...}'
            )
        try:
            data = json.loads(self.request.body)
        except ValueError as exc:
            raise ApiError(400, f"the request body is not valid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise ApiError(400, "the request body must be a JSON object")
        unknown = sorted(set(data) - set(allowed))
        if unknown:
            raise ApiError(
                400, f"unknown field(s) {', '.join(unknown)}; expected {', '.join(allowed)}"
            )
        if "path" not in data:
            raise ApiError(400, "'path' (a workflow file relative to the server root) is missing")
        return data

    def arg(self, name: str) -> str | None:
        return self.get_query_argument(name, None)


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
        data = self.body(("path", "env"))
        self.reply(await self.service.submit(data["path"], _env(data.get("env"))), 202)


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
        self.reply(await self.service.cancel(execution_id), 202)


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
    from .events import EventsHandler

    execution = rf"{API}/executions/([^/]+)"
    patterns: list[tuple[str, type[WorkflowsHandler]]] = [
        (rf"{API}/workflows", WorkflowListHandler),
        (rf"{API}/validate", ValidateHandler),
        (rf"{API}/runs", RunsHandler),
        (rf"{API}/executions", ExecutionListHandler),
        (execution, ExecutionHandler),
        (rf"{execution}/cancel", CancelHandler),
        (rf"{execution}/events", EventsHandler),
        (rf"{execution}/tasks/([^/]+)/log", TaskLogHandler),
        (rf"{execution}/tasks/([^/]+)/notebook", NotebookHandler),
        (rf"{API}/health", HealthHandler),
    ]
    return [(pattern, handler, {"service": service}) for pattern, handler in patterns]
