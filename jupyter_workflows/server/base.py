"""What every handler of the API shares: its place, its permissions, JSON replies and errors.

Both the REST handlers (``handlers.py``) and the event stream (``events.py``) build on
``WorkflowsHandler``; keeping it here lets ``handlers.routes`` import the stream's handler
without the two modules importing each other.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from jupyter_server.base.handlers import APIHandler

from ..errors import (
    AmbiguousExecutionId,
    ConfigError,
    ExecutionNotFound,
    StoreError,
    StoreUnavailable,
    StoreWriteFailed,
)
from .executions import BadParameter
from .service import ApiError, WorkflowService

API = "jupyter-workflows/api"
AUTH_RESOURCE = "jupyter_workflows"


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()  # as `workflow monitor --json` writes them
    return str(value)


def to_json(data: Any, *, compact: bool = False) -> str:
    """``data`` as the API writes it (datetimes in ISO 8601, anything else odd as text)."""
    separators = (",", ":") if compact else None
    return json.dumps(data, default=_jsonable, separators=separators)


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
        except (StoreUnavailable, StoreWriteFailed) as exc:  # the store needs an admin's hand
            self.log.error("jupyter-workflows: %s", exc)
            self.reply({"message": str(exc)}, 503)
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

    def body(self, allowed: tuple[str, ...], *, path: bool = True) -> dict[str, Any]:
        """The request body as a JSON object with only ``allowed`` fields (else ApiError 400);
        ``path=False``: no field is required, and an empty body is an empty object."""
        if not path and not self.request.body.strip():
            return {}
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
        if path and "path" not in data:
            raise ApiError(400, "'path' (a workflow file relative to the server root) is missing")
        return data

    def arg(self, name: str) -> str | None:
        return self.get_query_argument(name, None)
