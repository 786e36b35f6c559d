"""The webhook server of ``workflow serve``: POST to a hook's path queues a run of its workflow.

Endpoints (JSON out, errors as ``{"message": ...}``):
- ``POST <hook path>``: 202 ``{"execution_id", "workflow"}`` as soon as the run is queued (it
  runs later, through the ``RunQueue``); 200 with the original id and ``"replayed": true`` for a
  repeat (below); 401 for a missing or bad signature when the hook has a secret; 403 for a
  genuine stripe or slack signature whose timestamp is beyond the hook's tolerance; 413 for a
  body over ``max_body`` (decided from Content-Length before the body is read, or while a
  chunked body streams in); 503 with Retry-After when the wait list is full or the replay record
  cannot be used, or when the hook's secret variable is not set (a hook with a secret is never
  run unsigned).
- ``GET /health``: status, uptime, queue counts. ``GET /hooks``: the registered hooks.
- Any other path is 404; another method on a known path is 405 with ``Allow``.

The run's environment gets ``WEBHOOK_PAYLOAD`` (the body as text), ``WEBHOOK_PAYLOAD_FILE`` (the
exact body bytes, kept with the execution's artifacts), ``WEBHOOK_PATH``, ``WEBHOOK_DELIVERY_ID``
("" when the sender gave none) and ``WEBHOOK_EVENT`` (``X-GitHub-Event``, else ""). The body is
not parsed: a JSON content type with a body that is not JSON is still run, the body being passed
as it came (the workflow decides). ``WEBHOOK_PAYLOAD`` is left unset, with a log line, when the
body cannot be an environment value: not UTF-8, containing NUL, or over 127 KiB (execve refuses
one variable of 128 KiB or more); ``WEBHOOK_PAYLOAD_FILE`` always has it.

A repeat is a request carrying, within the hook's ``replay_window`` (24 h by default) of an
accepted one, the same delivery id (``X-GitHub-Delivery`` or ``X-Delivery-Id``) on that path or,
on a signed hook, the same signature, whatever its delivery id: the delivery id is not signed, so
a captured request resent with another one is the same request. A GitHub signature is a function
of the body alone, so two requests with byte-identical bodies are one request within the window
(GitHub's bodies differ from one delivery to the next; a sender that means a second run sends a
different body, or signs a timestamp: stripe, slack). Stripe and slack requests are also
remembered until their timestamp is out of tolerance, after which it refuses them. The record
(``triggers.replay``) lives in the store and is shared by every server on it, so a restart or a
second server behind the same load balancer does not run a repeat either. Hooks are loaded at
start-up: restart the server to serve edited definitions.
"""

from __future__ import annotations

import hashlib
import os
import re
import time
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import tornado.web
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets

from ..engine.queue import QueuedRun, QueueFull, RunQueue
from ..errors import StoreError, WorkflowError
from .hooks import RESERVED_PATHS, Hook, normalize_path
from .replay import ReplayRecord
from .signature import SignatureRefused, Signed, verify

DEFAULT_MAX_BODY = 1024 * 1024
ENV_VALUE_LIMIT = 127 * 1024
DELIVERY_HEADERS = ("X-GitHub-Delivery", "X-Delivery-Id")
RETRY_AFTER_SECONDS = 5
PAYLOAD_FILE = "webhook-payload"
_DELIVERY_ID = re.compile(r"[!-~]{1,200}")  # printable ASCII, no spaces: it lands in logs/files

Log = Callable[[str], None]


class _Refusal(tornado.web.HTTPError):
    """A request we refuse on purpose: the status, the message for the caller, extra headers."""

    def __init__(self, status: int, message: str, headers: Mapping[str, str] | None = None):
        super().__init__(status)
        self.message = message
        self.headers = dict(headers or {})


class WebhookServer:
    """Serves ``hooks`` (path -> Hook) and queues their runs on ``queue``.

    Use from the queue's event loop: ``port = server.listen(0)`` then, to stop,
    ``await server.close()`` (the caller shuts the queue down). ``store_dir`` keeps the
    replay record (None: memory only). ``environ`` is where secrets are read from, at each
    request; ``clock`` (Unix seconds) judges signed timestamps and the replay window.
    """

    def __init__(
        self,
        queue: RunQueue,
        hooks: Mapping[str, Hook],
        *,
        store_dir: Path | None = None,
        max_body: int = DEFAULT_MAX_BODY,
        log: Log = print,
        environ: Mapping[str, str] = os.environ,
        clock: Callable[[], float] = time.time,
        idle_timeout: float = 60.0,
    ):
        self.queue = queue
        self.hooks = dict(hooks)
        self.max_body = max_body
        self.log = log
        self.environ = environ
        self.clock = clock
        self.started = time.monotonic()
        record = store_dir / "webhooks" / "deliveries.jsonl" if store_dir else None
        self.replays = ReplayRecord(record, clock=clock)
        self.app = tornado.web.Application(
            [(r".*", _HookHandler, {"server": self})], log_function=self._log_request
        )
        self._idle_timeout = idle_timeout
        self._http: HTTPServer | None = None

    def listen(self, port: int = 0, host: str = "127.0.0.1") -> int:
        """Start listening; the port actually bound (``port=0`` picks a free one)."""
        # Tornado's own body limit would answer 400 on its own; ours answers 413 (see prepare).
        self._http = HTTPServer(
            self.app,
            max_body_size=1 << 62,
            idle_connection_timeout=self._idle_timeout,
            body_timeout=self._idle_timeout,
        )
        sockets = bind_sockets(port, host)
        self._http.add_sockets(sockets)
        return int(sockets[0].getsockname()[1])

    async def close(self) -> None:
        """Stop accepting connections and close the open ones."""
        if self._http is not None:
            self._http.stop()
            await self._http.close_all_connections()

    def missing_secrets(self) -> list[Hook]:
        """Hooks whose secret variable is not set (they refuse every request)."""
        return [h for h in self.hooks.values() if h.secret_env and not self._secret(h)]

    def _secret(self, hook: Hook) -> str | None:
        if hook.secret_env is None:
            return None
        return self.environ.get(hook.secret_env) or None  # an empty secret is no secret

    def health(self) -> dict[str, Any]:
        queue = self.queue
        return {
            "status": "ok",
            "uptime": round(time.monotonic() - self.started, 3),
            "hooks": len(self.hooks),
            "queue": {
                "running": queue.running,
                "waiting": queue.waiting,
                "concurrency": queue.concurrency,
                "max_waiting": queue.max_waiting,
            },
        }

    def hook_list(self) -> list[dict[str, Any]]:
        """What anyone may know: the paths, their workflows and whether they need a signature.

        Not which variable holds a secret, whether it is set, or where files live: the server
        log says that to its operator (a hook missing its secret is logged at start).
        """
        return [
            {
                "path": hook.path,
                "workflow": hook.workflow.name,
                "secret_required": hook.secret_env is not None,
            }
            for hook in self.hooks.values()
        ]

    def _log_request(self, handler: tornado.web.RequestHandler) -> None:
        status = handler.get_status()
        if status < 400:
            return  # accepted runs are logged with their execution id instead
        reason = getattr(handler, "refusal", "") or handler._reason
        request = handler.request
        self.log(f"{status} {request.method} {request.path} ({request.remote_ip}): {reason}")

    def authenticate(self, hook: Hook, body: bytes, headers: Any) -> Signed | None:
        """The verified signature (None for a hook without a secret); raises _Refusal."""
        if hook.secret_env is None:
            return None
        secret = self._secret(hook)
        if secret is None:
            self.log(f"{hook.path}: refused, the secret variable {hook.secret_env} is not set")
            raise _Refusal(503, "this hook's secret is not configured on the server")
        try:
            return verify(
                hook.signature, secret, body, headers, now=self.clock(), tolerance=hook.tolerance
            )
        except SignatureRefused as refused:
            raise _Refusal(refused.status, refused.reason) from None

    def trigger(
        self, hook: Hook, body: bytes, headers: Any, signed: Signed | None = None
    ) -> tuple[int, dict[str, Any]]:
        """Queue a run for a verified request, unless it is a repeat; (status, answer).

        Raises _Refusal. ``signed`` is what ``authenticate`` verified.
        """
        delivery = _delivery_id(headers)
        keys = _replay_keys(hook, delivery, signed)
        execution_id = str(uuid.uuid4())
        seen = self._claim(hook, keys, execution_id, signed) if keys else None
        by = f" (delivery {delivery})" if delivery else ""
        if seen is not None:
            same = "signature" if seen["key"].startswith("signature ") else "delivery id"
            run = seen["execution_id"]
            self.log(f"{hook.path}: same {same} as a request already run as {run}{by}; not run")
            return 200, {
                "execution_id": seen["execution_id"],
                "workflow": seen["workflow"],
                "replayed": True,
            }
        try:
            queued = self._submit(hook, body, delivery, headers, execution_id)
        except _Refusal:
            self._forget(hook, keys, execution_id)  # a retry of this request may run
            raise
        queued.done.add_done_callback(lambda done: self._log_end(hook, execution_id, done))
        self.log(f"{hook.path}: queued {queued.workflow.name} as {execution_id}{by}")
        return 202, {"execution_id": execution_id, "workflow": queued.workflow.name}

    def _claim(
        self, hook: Hook, keys: list[str], execution_id: str, signed: Signed | None
    ) -> dict[str, Any] | None:
        expires = self.clock() + hook.replay_window
        if signed is not None and signed.timestamp is not None:
            # Remembered at least as long as its timestamp is accepted (whole seconds).
            expires = max(expires, signed.timestamp + hook.tolerance + 1)
        try:
            return self.replays.claim(
                keys, execution_id=execution_id, workflow=hook.workflow.name, expires=expires
            )
        except (StoreError, OSError) as exc:
            # Never run what cannot be checked: it might be a replay.
            self.log(f"{hook.path}: cannot check the request against the replay record: {exc}")
            raise _Refusal(
                503,
                "the server cannot check this request against earlier ones; try again later",
                {"Retry-After": str(RETRY_AFTER_SECONDS)},
            ) from None

    def _forget(self, hook: Hook, keys: list[str], execution_id: str) -> None:
        if not keys:
            return
        try:
            self.replays.release(keys, execution_id)
        except (StoreError, OSError) as exc:
            self.log(
                f"{hook.path}: cannot release {execution_id}, which did not run ({exc}): "
                "a repeat of this request is answered with that id until it expires"
            )

    def _submit(
        self, hook: Hook, body: bytes, delivery: str, headers: Any, execution_id: str
    ) -> QueuedRun:
        payload_file = self._payload_file(execution_id)
        env = self._environment(hook, body, delivery, headers, payload_file)
        # The definition as it is now, like cron and file-change runs: an edit applies from
        # the next delivery. A hook given without a file runs the workflow it was given.
        source: Any = hook.file if hook.file is not None else hook.workflow
        try:
            queued = self.queue.submit(
                source, env=env, trigger="webhook", execution_id=execution_id, file=hook.file
            )
        except QueueFull as exc:
            raise _Refusal(
                503, f"too many runs queued: {exc}", {"Retry-After": str(RETRY_AFTER_SECONDS)}
            ) from exc
        except RuntimeError as exc:  # the queue is shutting down
            raise _Refusal(503, "the server is shutting down") from exc
        except WorkflowError as exc:  # the file was removed or broken since the start
            self.log(f"{hook.path}: cannot load {hook.file}: {exc}")
            message = "the workflow of this hook cannot be loaded (see the server log)"
            raise _Refusal(500, message) from None
        # The run starts on a later turn of the loop, so what follows happens before it.
        self._keep_payload(queued.execution_id, payload_file, body)
        return queued

    def _environment(
        self, hook: Hook, body: bytes, delivery: str, headers: Any, payload_file: Path | None
    ) -> dict[str, str]:
        env = {
            "WEBHOOK_PATH": hook.path,
            "WEBHOOK_DELIVERY_ID": delivery,
            "WEBHOOK_EVENT": headers.get("X-GitHub-Event", ""),
        }
        if payload_file is not None:
            env["WEBHOOK_PAYLOAD_FILE"] = str(payload_file)
        text, why_not = _payload_text(body)
        if text is not None:
            env["WEBHOOK_PAYLOAD"] = text
        else:
            self.log(f"{hook.path}: WEBHOOK_PAYLOAD not set ({why_not}); see WEBHOOK_PAYLOAD_FILE")
        return env

    def _payload_file(self, execution_id: str) -> Path | None:
        orchestrator = self.queue.orchestrator
        if not orchestrator.record:
            return None
        return Path(orchestrator.store.artifacts_dir(execution_id)) / PAYLOAD_FILE

    def _keep_payload(self, execution_id: str, path: Path | None, body: bytes) -> None:
        if path is None:
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(body)
        except OSError as exc:
            self.queue.cancel(execution_id)  # recorded as cancelled, with the reason logged
            self.log(f"cannot keep the payload of {execution_id} in {path}: {exc}")
            raise _Refusal(500, "the server cannot store the payload") from exc

    def _log_end(self, hook: Hook, execution_id: str, done: Any) -> None:
        if done.cancelled():
            self.log(f"{hook.path}: {execution_id} cancelled")
        elif done.exception() is not None:
            self.log(f"{hook.path}: {execution_id} could not run: {done.exception()}")
        else:
            execution = done.result()
            took = f" in {execution.duration:.2f}s" if execution.duration is not None else ""
            self.log(f"{hook.path}: {execution_id} {execution.status.value}{took}")


def _replay_keys(hook: Hook, delivery: str, signed: Signed | None) -> list[str]:
    """What a repeat of this request would share with it: delivery id first, then signature."""
    keys = [f"{hook.path} {delivery}"] if delivery else []
    if signed is not None:
        # A hash of it: the record never holds a signature that could be sent again.
        covered = f"{hook.path}\n{signed.digest}".encode()
        keys.append("signature " + hashlib.sha256(covered).hexdigest())
    return keys


def _delivery_id(headers: Any) -> str:
    for name in DELIVERY_HEADERS:
        value = headers.get(name)
        if value:
            if not _DELIVERY_ID.fullmatch(value):
                raise _Refusal(400, f"{name} must be 1-200 printable characters without spaces")
            return str(value)
    return ""


def _payload_text(body: bytes) -> tuple[str | None, str]:
    """The body as an environment value, or None and why it cannot be one."""
    if len(body) > ENV_VALUE_LIMIT:
        return None, f"{len(body)} bytes, over the {ENV_VALUE_LIMIT} an environment value can hold"
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return None, "the body is not UTF-8 text"
    if "\0" in text:
        return None, "the body contains NUL characters"
    return text, ""


@tornado.web.stream_request_body
class _HookHandler(tornado.web.RequestHandler):
    """Every request goes through here: route, size limit, then GET or POST."""

    def initialize(self, server: WebhookServer) -> None:
        self.server = server
        self.refusal = ""
        self.hook: Hook | None = None
        self._pending: _Refusal | None = None
        self._chunks: list[bytes] = []
        self._size = 0

    def set_default_headers(self) -> None:
        self.clear_header("Server")

    def prepare(self) -> None:
        path = normalize_path(self.request.path)
        self.hook = self.server.hooks.get(path)
        allowed = "POST" if self.hook is not None else "GET"
        if self.hook is None and path not in RESERVED_PATHS:
            self._pending = _Refusal(404, f"no webhook at {path}")
        elif self.request.method != allowed:
            self._pending = _Refusal(405, f"{path} accepts {allowed} only", {"Allow": allowed})
        length = self.request.headers.get("Content-Length", "")
        if length.strip().isdigit() and int(length) > self.server.max_body:
            # Answered before reading the body; tornado then closes the connection.
            raise _Refusal(413, self._too_large(int(length)))
        # Other refusals wait for the (small) body, so the connection can be kept alive.

    def data_received(self, chunk: bytes) -> None:
        if self._finished:
            return
        self._size += len(chunk)
        if self._size > self.server.max_body:
            # An exception here would only close the connection: answer instead.
            self.send_error(413, exc_info=(None, _Refusal(413, self._too_large(None)), None))
        elif self._pending is None:
            self._chunks.append(chunk)

    def _too_large(self, length: int | None) -> str:
        size = f"{length} bytes" if length is not None else "the body"
        return f"{size} over the limit of {self.server.max_body} bytes"

    def _respond(self, *args: str, **kwargs: str) -> None:
        if self._pending is not None:
            raise self._pending
        if self.hook is not None:
            body = b"".join(self._chunks)
            signed = self.server.authenticate(self.hook, body, self.request.headers)
            status, answer = self.server.trigger(self.hook, body, self.request.headers, signed)
            self.set_status(status)
            self.write(answer)
        elif normalize_path(self.request.path) == "/health":
            self.write(self.server.health())
        else:
            self.write({"hooks": self.server.hook_list()})

    get = post = put = delete = patch = head = options = _respond

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        error = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(error, _Refusal):
            message = error.message
            for name, value in error.headers.items():
                self.set_header(name, value)
        else:
            message = self._reason
        if status_code == 405 and not isinstance(error, _Refusal):  # a method tornado refuses
            known = normalize_path(self.request.path) in self.server.hooks
            self.set_header("Allow", "POST" if known else "GET")
        self.refusal = message
        self.write({"message": message})
