"""``workflow serve``: one daemon for the project's triggers, until SIGTERM or Ctrl-C.

It discovers the project's workflows (``workflows/definitions/`` and ``*.workflow.*`` files
anywhere, as ``jupyter_workflows.project`` finds them for every surface; broken files are
reported and left out), serves the webhook ones (plus ``--workflow FILE --path /hook``) and
starts every run through one bounded ``RunQueue``. On SIGTERM/SIGINT it stops listening,
cancels what runs or waits (each cancelled run is recorded) and exits 0. Only click is imported
at module level (asyncio alone would cost every ``workflow`` start ~20 ms): the rest loads
inside the command.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import click

from .common import executor_options, friendly_errors
from .common import fail as _fail

if TYPE_CHECKING:
    import asyncio

    from ..engine.queue import RunQueue
    from ..project import DiscoveredWorkflow
    from ..triggers.hooks import Hook

Log = Callable[[str], None]


class ServeOptions(NamedTuple):
    host: str
    port: int
    concurrency: int
    max_waiting: int
    max_body: int
    executor: str | None = None
    cluster: str | None = None


def other_triggers(
    queue: RunQueue,
    stop: asyncio.Event,
    *,
    root: Path,
    discovered: list[DiscoveredWorkflow],
    log: Log,
) -> list[Coroutine[Any, Any, None]]:
    """The cron schedules and file watches of the discovered workflows, each a coroutine that
    returns once ``stop`` is set. They share ``queue`` (its concurrency bound) with the hooks.

    A workflow whose trigger cannot be used (unknown time zone, a pattern outside the
    project) is reported and left out; the others are served.
    """
    from ..errors import WorkflowError
    from ..store import default_store_path
    from ..triggers.filewatch import FileWatcher, FileWatchJob
    from ..triggers.scheduler import CronJob, CronScheduler, describe

    cron_jobs: list[CronJob] = []
    file_jobs: list[FileWatchJob] = []
    for found in discovered:
        try:
            cron = CronJob.from_workflow(found.file, found.workflow)
            watch = FileWatchJob.from_workflow(found.file, found.workflow)
        except WorkflowError as exc:
            log(f"skipping {_relative(found.file, root)}: {exc}")
            continue
        if cron is not None:
            cron_jobs.append(cron)
        if watch is not None:
            file_jobs.append(watch)
    sources = []
    if cron_jobs:
        now = time.time()
        for job in cron_jobs:
            for line in describe(job, now):
                log(f"  cron {line}")
        scheduler = CronScheduler(queue, cron_jobs, store_dir=default_store_path(root), log=log)
        sources.append(scheduler.run(stop))
    if file_jobs:
        for watch in file_jobs:
            log(f"  watching {', '.join(watch.patterns)} -> {watch.workflow.name}")
        sources.append(FileWatcher(queue, file_jobs, root=root, log=log).run(stop))
    return sources


@click.command()
@click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True,
              help="0 picks a free port (printed).")  # fmt: skip
@click.option("--host", default="127.0.0.1", show_default=True,
              help="The address to listen on for webhooks (0.0.0.0: every interface).")  # fmt: skip
@click.option("--workflow", "workflow_file", type=click.Path(path_type=Path), default=None,
              help="Also serve this workflow (at --path, else at its trigger's path).")  # fmt: skip
@click.option("--path", "hook_path", default=None, help="The path for --workflow.")
@click.option("--concurrency", type=click.IntRange(min=1), default=4, show_default=True,
              help="Runs at most this many workflows at once.")  # fmt: skip
@click.option("--max-waiting", type=click.IntRange(min=0), default=100, show_default=True,
              help="Queues at most this many more; further triggers get 503.")  # fmt: skip
@click.option("--max-body", type=click.IntRange(min=1), default=1024 * 1024, show_default=True,
              help="Largest webhook body in bytes (larger: 413).")  # fmt: skip
@executor_options
@click.pass_obj
@friendly_errors
def serve(
    root: Path,
    port: int,
    host: str,
    workflow_file: Path | None,
    hook_path: str | None,
    concurrency: int,
    max_waiting: int,
    max_body: int,
    executor: str | None,
    cluster: str | None,
) -> None:
    """Serve the project's triggers (workflows/definitions/ and *.workflow.* files) until
    stopped: webhooks, file changes and cron schedules, all through one bounded run queue."""
    from ..project import discover_workflows
    from ..triggers.hooks import build_hooks, default_secret_env

    def problem(line: str) -> None:
        _log(line, err=True)

    explicit = _explicit_hook(root, workflow_file, hook_path)
    discovered = discover_workflows(root, log=problem)
    hooks = build_hooks(
        discovered, explicit=explicit, secret_env=default_secret_env(root), log=problem
    )
    options = ServeOptions(host, port, concurrency, max_waiting, max_body, executor, cluster)
    import asyncio

    try:
        asyncio.run(_daemon(root, hooks, discovered, options))
    except _CannotListen as exc:
        _fail(f"cannot listen on {host}:{port}: {exc}")


class _CannotListen(Exception):
    """The port is taken or the address unusable (an OSError from binding, nothing else)."""


def _explicit_hook(root: Path, file: Path | None, path: str | None) -> Hook | None:
    """The ``--workflow FILE --path P`` hook (P defaults to the file's own webhook path)."""
    from ..definition.model import WebhookTrigger
    from ..engine.orchestrator import WorkflowOrchestrator
    from ..triggers.hooks import Hook

    if file is None:
        if path is not None:
            _fail("--path needs --workflow FILE (the workflow to run at that path)")
        return None
    workflow, loaded_from = WorkflowOrchestrator(root, record=False).load(file)
    trigger = workflow.trigger
    if path is None:
        if not isinstance(trigger, WebhookTrigger):
            _fail(f"{file}: no webhook trigger in the workflow; give its path with --path /...")
        assert isinstance(trigger, WebhookTrigger)
        path = trigger.config.webhook
    return Hook.serving(path, workflow, Path(loaded_from or file))


async def _daemon(
    root: Path, hooks: dict[str, Hook], discovered: list[DiscoveredWorkflow], options: ServeOptions
) -> None:
    import asyncio
    import signal

    from ..engine.orchestrator import WorkflowOrchestrator
    from ..engine.queue import RunQueue
    from ..monitor.alerting import attach_alerts
    from ..store import default_store_path
    from ..tasks.custody import dedicate
    from ..triggers.webhook_server import WebhookServer

    # The daemon runs workflows and nothing else: what its runs start is born in its cgroup
    # (where one can be made) and ends with it. Not a subreaper: in a long-lived process the
    # orphans that exit on their own would pile up as zombies.
    dedicate(adopt_orphans=False)
    orchestrator = WorkflowOrchestrator(root, executor=options.executor, cluster=options.cluster)
    alerts = attach_alerts(orchestrator, warn=lambda line: _log(f"warning: {line}", err=True))
    if alerts is not None:
        alerts.start_courier()  # delivers what runs anywhere on the store left in the outbox
    queue = RunQueue(orchestrator, concurrency=options.concurrency, max_waiting=options.max_waiting)
    server = WebhookServer(
        queue, hooks, store_dir=default_store_path(root), max_body=options.max_body, log=_log,
        environ=_keep_secrets_from_tasks(hooks, root),
    )  # fmt: skip
    try:
        port = server.listen(options.port, options.host)
    except OSError as exc:
        raise _CannotListen(exc.strerror or str(exc)) from exc
    _announce(server, root, _url(options.host, port))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def first_signal() -> None:
        # A second SIGTERM / Ctrl-C during the shutdown gets the default action (exit now)
        # instead of being swallowed while runs are being cancelled.
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
        stop.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, first_signal)
    sources = other_triggers(queue, stop, root=root, discovered=discovered, log=_log)
    tasks = [asyncio.create_task(source) for source in sources]
    for task in tasks:
        task.add_done_callback(_report_crash)
    await stop.wait()
    _log(f"stopping: cancelling {queue.running} running and {queue.waiting} waiting run(s)")
    await server.close()
    await asyncio.gather(*tasks, return_exceptions=True)
    await queue.shutdown(cancel=True)
    if alerts is not None:
        await loop.run_in_executor(None, alerts.close)
    _log("stopped")


def _keep_secrets_from_tasks(hooks: dict[str, Hook], root: Path) -> dict[str, str]:
    """The hooks' secrets, taken out of this process's environment, or else read from the
    secret sources (``WORKFLOW_SECRET_<NAME>``, the secrets file, the command, the keyring).

    Runs inherit the daemon's environment; a task printing ``env`` must not reveal the key
    that signs deliveries. The server keeps its own copy to check signatures with.
    """
    import os

    from ..secrets.credentials import credentials

    names = sorted({hook.secret_env for hook in hooks.values() if hook.secret_env})
    found = credentials(root, names, warn=lambda line: _log(f"warning: {line}", err=True))
    secrets = {name: found[name] for name in names if found.get(name)}
    for name in names:
        os.environ.pop(name, None)
        os.environ.pop(f"WORKFLOW_SECRET_{name}", None)
    return secrets


def _announce(server: Any, root: Path, url: str) -> None:
    _log(f"listening on {url}")
    if not server.hooks:
        _log("no webhook workflows in workflows/definitions/ (serve one with --workflow FILE)")
    for hook in server.hooks.values():
        where = _relative(hook.file, root) if hook.file else "?"
        guard = f"signed with ${hook.secret_env}" if hook.secret_env else "no secret"
        _log(f"  POST {url}{hook.path} -> {hook.workflow.name} ({where}, {guard})")
    for hook in server.missing_secrets():
        _log(
            f"  {hook.path}: ${hook.secret_env} is not set: this hook refuses every request "
            "until the server is restarted with it",
            err=True,
        )
    _log(f"  GET  {url}/health, {url}/hooks")


def _report_crash(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        _log(f"a trigger source stopped with an error: {task.exception()!r}", err=True)


def _relative(path: Path, root: Path) -> str:
    try:
        return str(path.resolve().relative_to(root))
    except ValueError:
        return str(path)


def _url(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


def _log(line: str, *, err: bool = False) -> None:
    """One daemon log line, time-stamped; flushed at once (it is often read through a pipe)."""
    stamp = time.strftime("%Y-%m-%d %H:%M:%S")
    click.echo(f"{stamp} {line}", file=sys.stderr if err else sys.stdout)
