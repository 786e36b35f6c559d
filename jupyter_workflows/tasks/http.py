"""``http``: one request with httpx; the body is the ``result``, status and headers are outputs.

``url``, header names and values, ``query`` values and ``body``/``json`` are templates
(``Authorization: Bearer ${env.API_TOKEN}``); ``${env.X}`` also sees the task's own
``environment``. A value in the ``url`` is encoded for the part it lands in, so it can never
add a path segment, a parameter or a host (``definition.url_templates``: a reference at the
very start holds a whole base URL; ``${env.X|raw}`` inserts a value as it is).

``data`` (the original's name) is ``body``; ``auth`` (``{type: basic, username, password}`` or
``{type: bearer, token}``) sets the Authorization header, masked like any credential. A
``body`` that is a string is sent as it is; an object or a list is sent as JSON, like
``json``. ``result`` is the response body, parsed when the response says it is JSON;
``outputs`` are ``status`` and ``headers`` (lower-case names, repeated headers joined with ", ",
``set-cookie`` left out).

Success is a status in ``expected_status`` (default: any 2xx). Exit codes follow curl's, so
scripts that read them meet familiar numbers: 0 success, 3 bad URL, 6 unknown host, 7 cannot
connect, 22 unexpected status, 28 timeout, 47 too many redirects, 56 other transport errors.
Connection errors, timeouts, 5xx, 408 and 429 are worth another attempt (the engine retries
them per the task's ``retry``); any other unexpected status (a 4xx, an unfollowed redirect),
a bad URL and too many redirects fail at once (``retryable=False``).

The task ``timeout`` (a number is milliseconds here, as in the original format whose HTTP
client took it so; other task types count seconds) is enforced by the engine; it is also
httpx's timeout for each phase (connect, send, wait for the response), so a slow server fails
with a message naming the URL and the phase. Secrets stay out of logs and errors: values of
headers named like auth/token/key/secret/password/cookie/session, a password in the URL, query
parameters named like those, ``auth`` credentials and ``${secret.*}`` values are replaced by
``***``, also where a server echoes one back in the body or a header.
"""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, quote_plus

from ..definition.durations import format_duration
from ..definition.templates import Scope, render, render_value, to_text
from ..definition.url_templates import UrlTemplateError, render_url
from ..execution.states import State
from .base import ModelAt, TaskContext, TaskResult, TaskType, models_from

if TYPE_CHECKING:
    from .http_model import HttpAuth, HttpTask

__getattr__ = models_from("jupyter_workflows.tasks.http_model", "HttpAuth", "HttpTask")

if TYPE_CHECKING:
    import ssl

    import httpx

SENSITIVE_NAME = re.compile(
    r"auth|token|key|secret|passw|pwd|cookie|session|credential|signature", re.IGNORECASE
)
HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # RFC 9110 token
DROPPED_HEADERS = frozenset({"set-cookie", "set-cookie2"})
RETRYABLE_STATUS = frozenset({408, 429})
MASK = "***"
# How much of an unexpected response's body goes into the error message.
BODY_SNIPPET = 200


class _BadRequest(Exception):
    """A request that cannot be sent as configured; the message says why."""


@dataclass
class _Redactor:
    """Replaces secret values in any text meant for logs, errors and outputs."""

    secrets: set[str] = field(default_factory=set)

    def add(self, value: str) -> None:
        if value:
            self.secrets.add(value)
            # "Bearer abc" -> also "abc" alone, in case a message quotes only the credential.
            _, _, credential = value.partition(" ")
            if credential.strip() and len(credential.strip()) >= 4:
                self.secrets.add(credential.strip())

    def __call__(self, text: str) -> str:
        for secret in sorted(self.secrets, key=len, reverse=True):
            text = text.replace(secret, MASK)
        return text

    def value(self, value: Any) -> Any:
        """``value`` with every string in it (keys too) masked: a server may echo a secret."""
        if not self.secrets:
            return value
        if isinstance(value, str):
            return self(value)
        if isinstance(value, dict):
            return {self.value(k): self.value(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.value(item) for item in value]
        return value


@dataclass
class _Request:
    method: str
    url: httpx.URL
    shown_url: str  # the URL with its secrets masked
    headers: dict[str, str]
    content: bytes | None
    json_body: Any
    redact: _Redactor


class HttpType(TaskType):
    name = "http"
    model = ModelAt("jupyter_workflows.tasks.http_model:HttpTask")

    def __init__(self, transport: httpx.AsyncBaseTransport | None = None):
        # An httpx transport to send through instead of the network (httpx.MockTransport).
        self.transport = transport

    async def run(self, task: HttpTask, ctx: TaskContext) -> TaskResult:  # type: ignore[override]
        import httpx

        # The task's own `environment` is visible to ${env.X} too: there is no process to get it.
        scope = replace(ctx.scope, env=ctx.env)
        try:
            request = _build(task, scope)
        except _BadRequest as exc:
            return _final(TaskResult.failure(str(exc), exit_code=3))
        started = time.monotonic()
        try:
            async with self._client(task, ctx.timeout) as client:
                response = await client.request(
                    request.method,
                    request.url,
                    headers=request.headers,
                    content=request.content,
                    json=request.json_body,
                )
        except httpx.HTTPError as exc:
            result = _transport_failure(exc, request, ctx.timeout)
            ctx.emit_line("stderr", result.error or "")
            return result
        elapsed_ms = (time.monotonic() - started) * 1000
        ctx.emit_line("stdout", _summary_line(request, response, elapsed_ms))
        return _response_result(task, request, response)

    def _client(self, task: HttpTask, timeout: float | None) -> httpx.AsyncClient:
        import httpx

        from .. import __version__

        return httpx.AsyncClient(
            transport=self.transport,
            verify=_ssl_context(),
            follow_redirects=task.follow_redirects,
            # None: no limit of httpx's own (its default is 5s) when the task sets no timeout.
            timeout=httpx.Timeout(timeout),
            headers={"user-agent": f"jupyter-workflows/{__version__}"},
        )


@lru_cache(maxsize=1)
def _ssl_context() -> ssl.SSLContext:
    """One context for every request: building it costs ~15 ms, a client without it as much."""
    import httpx

    return httpx.create_ssl_context()


def _build(task: HttpTask, scope: Scope) -> _Request:
    """Render the templates and collect what must never be shown."""
    import httpx

    redact = _Redactor()
    for secret in scope.secrets.values():
        redact.add(secret)
        # As it appears in a URL: encoded in the path, and in the query as httpx writes it.
        redact.add(quote(secret, safe="", errors="replace"))
        redact.add(quote_plus(secret, safe="", errors="replace"))
    headers = _render_headers(task.headers, scope, redact)
    if task.auth is not None:
        if any(name.lower() == "authorization" for name in headers):
            raise _BadRequest("set either 'auth' or an Authorization header, not both")
        headers["Authorization"] = _authorization(task.auth, scope, redact)
    try:
        raw_url = render_url(task.url, scope)
    except UrlTemplateError as exc:
        raise _BadRequest(redact(str(exc))) from None
    try:
        url = httpx.URL(raw_url).copy_merge_params(_query(task.query, scope))
    except httpx.InvalidURL as exc:
        raise _BadRequest(f"invalid URL {redact(raw_url)!r}: {exc}") from None
    if url.password:
        redact.add(url.password)
    for name, value in url.params.multi_items():
        if SENSITIVE_NAME.search(name):
            redact.add(value)
    if task.body is not None and task.json_body is not None:
        raise _BadRequest("set either 'body' or 'json', not both")
    content, json_body = None, None
    if isinstance(task.body, str):
        content = render(task.body, scope).encode("utf-8")
    elif task.body is not None:
        json_body = render_value(task.body, scope)
    elif task.json_body is not None:
        json_body = render_value(task.json_body, scope)
    return _Request(
        method=task.method,
        url=url,
        shown_url=_shown_url(url, redact),
        headers=headers,
        content=content,
        json_body=json_body,
        redact=redact,
    )


def _render_headers(templates: dict[str, str], scope: Scope, redact: _Redactor) -> dict[str, str]:
    """Rendered headers, checked here so that a bad one fails clearly instead of mid-send.

    Messages never quote a value: it may be a credential.
    """
    headers = {}
    for name, value in templates.items():
        name, value = render(name, scope), render(value, scope)
        if SENSITIVE_NAME.search(name):
            redact.add(value)
        if not HEADER_NAME.fullmatch(name):
            raise _BadRequest(f"header name {name!r} is not valid in HTTP")
        if "\n" in value or "\r" in value:
            raise _BadRequest(f"header {name}: its value contains a line break")
        if not value.isascii():
            raise _BadRequest(f"header {name}: its value is not ASCII (percent-encode it)")
        headers[name] = value
    return headers


def _authorization(auth: HttpAuth, scope: Scope, redact: _Redactor) -> str:
    """The Authorization header of ``auth``, its secrets added to what is masked."""
    import base64

    if auth.type == "bearer":
        token = render(auth.token or "", scope)
        redact.add(token)
        return f"Bearer {token}"
    user, password = render(auth.username or "", scope), render(auth.password or "", scope)
    redact.add(password)
    credentials = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
    redact.add(credentials)
    return f"Basic {credentials}"


def _query(query: dict[str, Any], scope: Scope) -> tuple[tuple[str, str], ...]:
    """Query pairs; a list value repeats the parameter, other values become text."""
    pairs: list[tuple[str, str]] = []
    for name, value in render_value(query, scope).items():
        values = value if isinstance(value, list) else [value]
        pairs.extend((str(name), to_text(item)) for item in values)
    return tuple(pairs)


def _shown_url(url: httpx.URL, redact: _Redactor) -> str:
    params = [(k, MASK if SENSITIVE_NAME.search(k) else v) for k, v in url.params.multi_items()]
    shown = url.copy_with(params=params) if params else url
    if url.password:
        shown = shown.copy_with(username=url.username, password=MASK)
    # httpx percent-encodes the mask; show it as typed.
    return redact(str(shown).replace("%2A%2A%2A", MASK))


def _expected(task: HttpTask) -> tuple[set[int] | None, str]:
    """The statuses that count as success (None: any 2xx) and how to say so."""
    if task.expected_status is None:
        return None, "2xx"
    codes = task.expected_status
    if isinstance(codes, int):
        codes = [codes]
    return set(codes), " or ".join(str(code) for code in codes)


def _response_result(task: HttpTask, request: _Request, response: httpx.Response) -> TaskResult:
    outputs = {"status": response.status_code, "headers": request.redact.value(_headers(response))}
    body = request.redact.value(_body(response))
    expected, expected_text = _expected(task)
    status = response.status_code
    if (200 <= status < 300) if expected is None else (status in expected):
        return TaskResult(exit_code=0, result=body, outputs=outputs)
    error = (
        f"{request.method} {request.shown_url} returned {status} {response.reason_phrase}"
        f" (expected {expected_text})"
    )
    snippet = " ".join(response.text.split())[:BODY_SNIPPET] if response.content else ""
    if snippet:
        error += f": {request.redact(snippet)}"
    result = TaskResult(
        status=State.FAILED, exit_code=22, result=body, outputs=outputs, error=error
    )
    # A server error or "slow down" may pass; a 4xx or a redirect will answer the same again.
    return result if status >= 500 or status in RETRYABLE_STATUS else _final(result)


def _headers(response: httpx.Response) -> dict[str, str]:
    return {k: v for k, v in response.headers.items() if k not in DROPPED_HEADERS}


def _body(response: httpx.Response) -> Any:
    if not response.content:
        return None
    content_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "application/json" or content_type.endswith("+json"):
        try:
            return json.loads(response.content)
        except ValueError:
            pass  # a server that says JSON and sends something else: keep the text
    return response.text


def _summary_line(request: _Request, response: httpx.Response, elapsed_ms: float) -> str:
    line = f"{request.method} {request.shown_url} -> {response.status_code} in {elapsed_ms:.0f} ms"
    if response.history:
        final = _shown_url(response.url, request.redact)
        line += f" (after {len(response.history)} redirect(s), at {final})"
    return line


def _transport_failure(
    exc: httpx.HTTPError, request: _Request, timeout: float | None
) -> TaskResult:
    """A request that got no response: say what, where, and whether to try again."""
    import httpx

    where = f"{request.method} {request.shown_url}"
    if isinstance(exc, httpx.TimeoutException):
        phase = {
            httpx.ConnectTimeout: "connecting",
            httpx.WriteTimeout: "sending the request",
            httpx.PoolTimeout: "waiting for a connection",
        }.get(type(exc), "waiting for the response")
        return TaskResult(
            status=State.TIMED_OUT,
            exit_code=28,
            error=f"{where} timed out after {format_duration(timeout)} {phase}",
        )
    if isinstance(exc, httpx.UnsupportedProtocol):
        return _final(TaskResult.failure(f"{where}: {exc}", exit_code=3))
    if isinstance(exc, httpx.TooManyRedirects):
        return _final(TaskResult.failure(f"{where}: {exc}", exit_code=47))
    cause = request.redact(_root_cause(exc))
    if isinstance(exc, httpx.ConnectError):
        unknown_host = _is_dns_error(exc)
        what = "cannot resolve host" if unknown_host else "cannot connect"
        return TaskResult.failure(f"{where}: {what}: {cause}", exit_code=6 if unknown_host else 7)
    return TaskResult.failure(f"{where} failed: {type(exc).__name__}: {cause}", exit_code=56)


def _root_cause(exc: BaseException) -> str:
    """The innermost OS-level reason ("Connection refused"), else the exception's message."""
    import socket

    message = str(exc) or type(exc).__name__
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, socket.gaierror) and current.strerror:
            message = current.strerror
        elif isinstance(current, OSError) and current.errno:
            # asyncio words it "Connect call failed ('127.0.0.1', 80)"; the errno says why.
            message = os.strerror(current.errno)
        current = current.__cause__ or current.__context__
    return message


def _is_dns_error(exc: BaseException) -> bool:
    import socket

    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, socket.gaierror):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


def _final(result: TaskResult) -> TaskResult:
    """Mark a failure that another attempt cannot fix: the engine makes no further attempts."""
    result.retryable = False
    return result
