"""The webhook server of ``workflow serve``: POST to a hook's path queues a run of its workflow.

Endpoints (JSON out, errors as ``{"message": ...}``):
- ``POST <hook path>``: 202 ``{"execution_id", "workflow"}`` as soon as the run is queued (it
  runs later, through the ``RunQueue``); 200 with the original id and ``"replayed": true`` for a
  delivery id (``X-GitHub-Delivery`` or ``X-Delivery-Id``) already run on that path; 401 for a
  missing or bad signature when the hook has a secret; 413 for a body over ``max_body`` (decided
  from Content-Length before the body is read, or while a chunked body streams in); 503 with
  Retry-After when the wait list is full, or when the hook's secret variable is not set (a hook
  with a secret is never run unsigned).
- ``GET /health``: status, uptime, queue counts. ``GET /hooks``: the registered hooks.
- Any other path is 404; another method on a known path is 405 with ``Allow``.

The run's environment gets ``WEBHOOK_PAYLOAD`` (the body as text), ``WEBHOOK_PAYLOAD_FILE`` (the
exact body bytes, kept with the execution's artifacts), ``WEBHOOK_PATH``, ``WEBHOOK_DELIVERY_ID``
("" when the sender gave none) and ``WEBHOOK_EVENT`` (``X-GitHub-Event``, else ""). The body is
not parsed: a JSON content type with a body that is not JSON is still run, the body being passed
as it came (the workflow decides). ``WEBHOOK_PAYLOAD`` is left unset, with a log line, when the
body cannot be an environment value: not UTF-8, containing NUL, or over 127 KiB (execve refuses
one variable of 128 KiB or more); ``WEBHOOK_PAYLOAD_FILE`` always has it.

Replays are remembered in memory (the last ``delivery_capacity``) and in
``<store>/webhooks/deliveries.jsonl``, so a restart keeps them. Hooks are loaded at start-up:
restart the server to serve edited definitions.
"""

from __future__ import annotations

import json
import os
import re
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TextIO

import tornado.web
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets

from ..engine.queue import QueueFull, RunQueue
from ..errors import WorkflowError
from .hooks import RESERVED_PATHS, Hook, normalize_path
from .signature import HEADER, LEGACY_HEADER, check_signature

DEFAULT_MAX_BODY = 1024 * 1024
ENV_VALUE_LIMIT = 127 * 1024
DELIVERY_HEADERS = ("X-GitHub-Delivery", "X-Delivery-Id")
RETRY_AFTER_SECONDS = 5
PAYLOAD_FILE = "webhook-payload"
_DELIVERY_ID = re.compile(r"[!-~]{1,200}")  # printable ASCII, no spaces: it lands in logs/files

Log = Callable[[str], None]


class DeliveryLog:
    """Delivery ids already run: the last ``capacity`` in memory, appended to a JSON-lines file.

    The file is read back at start-up (a torn last line is ignored) and rewritten, newest
    ``capacity`` entries only, when it holds twice that many lines. It is per server process:
    two servers on one store do not see each other's deliveries.
    """

    def __init__(self, path: Path | None, *, capacity: int = 10_000, log: Log = print):
        self.path = path
        self.capacity = capacity
        self._seen: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._lines = 0
        self._file: TextIO | None = None
        if path is not None:
            self._load(path, log)

    def _load(self, path: Path, log: Log) -> None:
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return
        except OSError as exc:
            log(f"cannot read earlier deliveries from {path}: {exc} (starting without them)")
            return
        for line in lines:
            try:
                record = json.loads(line)
                self._remember(record["key"], record)
            except (ValueError, KeyError, TypeError):
                continue  # a line torn by a crash: the rest still counts
        self._lines = len(lines)

    def get(self, key: str) -> dict[str, Any] | None:
        record = self._seen.get(key)
        if record is not None:
            self._seen.move_to_end(key)
        return record

    def add(self, key: str, **fields: Any) -> None:
        record = {"key": key, **fields}
        self._remember(key, record)
        if self.path is None:
            return
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - kept open
        # Flushed at once: a crash of the server loses no accepted delivery.
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()
        self._lines += 1
        if self._lines > 2 * self.capacity:
            self._compact(self.path)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def _remember(self, key: str, record: dict[str, Any]) -> None:
        self._seen[key] = record
        self._seen.move_to_end(key)
        while len(self._seen) > self.capacity:
            self._seen.popitem(last=False)

    def _compact(self, path: Path) -> None:
        self.close()
        temporary = path.with_suffix(".tmp")
        temporary.write_text("".join(json.dumps(r) + "\n" for r in self._seen.values()))
        os.replace(temporary, path)
        self._lines = len(self._seen)


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
    delivery record (None: memory only). ``environ`` is where secrets are read from, at each
    request.
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
        delivery_capacity: int = 10_000,
        idle_timeout: float = 60.0,
    ):
        self.queue = queue
        self.hooks = dict(hooks)
        self.max_body = max_body
        self.log = log
        self.environ = environ
        self.started = time.monotonic()
        record = store_dir / "webhooks" / "deliveries.jsonl" if store_dir else None
        self.deliveries = DeliveryLog(record, capacity=delivery_capacity, log=log)
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
        self.deliveries.close()

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

    def authenticate(self, hook: Hook, body: bytes, headers: Any) -> None:
        """Raise _Refusal unless the hook has no secret or the body is signed with it."""
        if hook.secret_env is None:
            return
        secret = self._secret(hook)
        if secret is None:
            self.log(f"{hook.path}: refused, the secret variable {hook.secret_env} is not set")
            raise _Refusal(503, "this hook's secret is not configured on the server")
        problem = check_signature(
            secret, body, headers.get(HEADER), legacy_header=headers.get(LEGACY_HEADER)
        )
        if problem is not None:
            raise _Refusal(401, problem)

    def trigger(self, hook: Hook, body: bytes, headers: Any) -> tuple[int, dict[str, Any]]:
        """Queue a run for a verified delivery; (status, answer). Raises _Refusal."""
        delivery = _delivery_id(headers)
        key = f"{hook.path} {delivery}"
        if delivery and (seen := self.deliveries.get(key)) is not None:
            self.log(f"{hook.path}: delivery {delivery} already run as {seen['execution_id']}")
            return 200, {
                "execution_id": seen["execution_id"],
                "workflow": seen["workflow"],
                "replayed": True,
            }
        execution_id = str(uuid.uuid4())
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
        if delivery:
            self.deliveries.add(key, execution_id=execution_id, workflow=queued.workflow.name)
        queued.done.add_done_callback(lambda done: self._log_end(hook, execution_id, done))
        by = f" (delivery {delivery})" if delivery else ""
        self.log(f"{hook.path}: queued {queued.workflow.name} as {execution_id}{by}")
        return 202, {"execution_id": execution_id, "workflow": queued.workflow.name}

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
            self.server.authenticate(self.hook, body, self.request.headers)
            status, answer = self.server.trigger(self.hook, body, self.request.headers)
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
