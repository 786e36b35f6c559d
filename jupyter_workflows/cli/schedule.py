"""``workflow schedule FILE``: run one workflow on its cron schedule, in the foreground.

Only click is imported here: croniter, the engine and the store load inside the command.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from .common import EXIT_INTERRUPTED, executor_options, friendly_errors
from .common import fail as _fail


@click.command("schedule")
@click.argument("file", type=click.Path(path_type=Path))
@click.option(
    "--cron",
    "expression",
    default=None,
    metavar="EXPR",
    help='Cron expression, e.g. "0 */6 * * *" (default: the workflow\'s cron trigger).',
)
@click.option(
    "--tz",
    "zone",
    default=None,
    metavar="ZONE",
    help="IANA time zone of the schedule, e.g. Europe/Zurich (default: the trigger's, "
    "else this machine's).",
)
@click.option(
    "--overlap",
    type=click.Choice(["skip", "queue", "allow"]),
    default=None,
    help="When the previous run is still going at a slot (default: the trigger's, else skip).",
)
@click.option(
    "--catchup",
    type=click.Choice(["none", "latest", "all"]),
    default=None,
    help="Slots missed while not running (default: the trigger's, else none).",
)
@click.option(
    "--concurrency",
    type=click.IntRange(min=1),
    default=4,
    show_default=True,
    help="Runs at once at most (with --overlap allow).",
)
# Tests only: a six-field expression with a leading seconds field, so a real process can be
# watched firing without waiting for minutes.
@click.option("--seconds", is_flag=True, hidden=True)
@executor_options
@click.pass_obj
@friendly_errors
def schedule(
    root: Path,
    file: Path,
    expression: str | None,
    zone: str | None,
    overlap: str | None,
    catchup: str | None,
    concurrency: int,
    seconds: bool,
    executor: str | None,
    cluster: str | None,
) -> None:
    """Run a workflow on a cron schedule until stopped (Ctrl-C or SIGTERM).

    Each slot's run gets SCHEDULED_TIME (ISO 8601) in its environment. The last handled slot
    is kept in the project's store, so a restart never repeats one.
    """
    import asyncio
    import dataclasses
    import time

    from ..engine.orchestrator import WorkflowOrchestrator
    from ..triggers.scheduler import CronJob, describe

    orchestrator = WorkflowOrchestrator(root, executor=executor, cluster=cluster)
    workflow, loaded = orchestrator.load(file)
    path = Path(loaded or file).resolve()
    job = CronJob.from_workflow(path, workflow, cron=expression, tz=zone, seconds=seconds)
    if job is None:
        _fail(
            f"{file}: workflow '{workflow.name}' has no cron trigger; give a schedule with "
            '--cron EXPR, e.g. --cron "0 */6 * * *"'
        )
        return
    policies: dict[str, Any] = {"overlap": overlap, "catchup": catchup}
    job = dataclasses.replace(job, **{k: v for k, v in policies.items() if v is not None})
    for line in describe(job, time.time()):
        click.echo(line)
    interrupted = asyncio.run(_daemon(orchestrator, job, concurrency))
    if interrupted:
        sys.exit(EXIT_INTERRUPTED)


async def _daemon(orchestrator: Any, job: Any, concurrency: int) -> bool:
    """Fire the job's slots until SIGINT or SIGTERM; True when it was SIGINT."""
    import asyncio
    import signal

    from ..engine.queue import RunQueue
    from ..triggers.scheduler import CronScheduler

    queue = RunQueue(orchestrator, concurrency=concurrency)
    stop = asyncio.Event()
    received: list[int] = []

    def on_signal(signum: int) -> None:
        received.append(signum)
        stop.set()

    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, on_signal, signum)
    scheduler = CronScheduler(queue, [job], store_dir=orchestrator.store.path, log=_log)
    _log(f"scheduling {job.name}; Ctrl-C or SIGTERM stops")
    try:
        await scheduler.run(stop)
    finally:
        if queue.running or queue.waiting:
            _log(f"stopping: cancelling {queue.running} running, {queue.waiting} waiting run(s)")
        await queue.shutdown(cancel=True)
        _log("stopped")
    return bool(received) and received[0] == signal.SIGINT


def _log(line: str) -> None:
    from datetime import datetime

    click.echo(f"{datetime.now().astimezone():%Y-%m-%d %H:%M:%S%z} {line}")
