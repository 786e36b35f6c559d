"""The fields of an ``http`` task: apart from the type (``http.py``), so that running one
imports no pydantic (``tasks.base.ModelAt``)."""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import BeforeValidator, Field

from ..definition import field_checks
from ..definition.model import Milliseconds, Strict, TaskBase, model_rule


class HttpAuth(Strict):
    """Credentials sent with the request (templated; never shown in logs or records)."""

    type: Literal["basic", "bearer"]
    username: str | None = None
    password: str | None = None
    token: str | None = None

    _complete = model_rule(field_checks.complete_auth)


class HttpTask(TaskBase):
    type: Literal["http"]
    timeout: Milliseconds | None = Field(  # type: ignore[assignment]
        None,
        description="Per attempt (number: milliseconds, as in the original format, whose HTTP "
        'client takes them so; or "10s").',
    )
    url: str
    method: Annotated[
        Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"],
        BeforeValidator(field_checks.upper_method),
    ] = "GET"
    headers: dict[str, str] = Field(default_factory=dict)
    query: dict[str, Any] = Field(default_factory=dict)
    body: Any = None
    json_body: Any = Field(None, alias="json")
    expected_status: Union[int, list[int], None] = Field(
        None, description="Status code(s) that count as success; default any 2xx."
    )
    follow_redirects: bool = True
    data: Any = Field(None, description="The original format's name for 'body'.")
    auth: HttpAuth | None = None

    _one_body = model_rule(field_checks.one_body)
