"""``workflow cancel ID``: stop a running execution, whichever process runs it.

Only click is imported here: the store loads inside the command.
"""

from __future__ import annotations

from pathlib import Path

import click

from .common import EXIT_FAILED, friendly_errors, json_text
from .common import fail as _fail


@click.command("cancel")
@click.argument("execution_id")
@click.option("--wait", "wait_seconds", type=click.FloatRange(min=0), default=5.0,
              show_default=True, metavar="SECONDS",
              help="How long to wait for the run to be recorded cancelled.")  # fmt: skip
@click.option("--no-wait", is_flag=True, help="Return once the request is written.")
@click.option("--json", "as_json", is_flag=True, help="Print the execution as JSON.")
@click.pass_obj
@friendly_errors
def cancel(root: Path, execution_id: str, wait_seconds: float, no_wait: bool,
           as_json: bool) -> None:  # fmt: skip
    """Cancel a running execution (its id, or a prefix naming one), wherever it runs: the
    process running it (`workflow run`, cron, `workflow serve`, a kernel, the lab) stops its
    tasks within a second and records it cancelled, by `cli`.

    Exit code 0 once it is recorded cancelled (with --no-wait: once asked); 1 when no single
    execution has that id, when it has ended already (its status is shown), when its runner
    had died (it is recorded as crashed), or when it still runs after --wait seconds."""
    from ..execution.states import State
    from ..project import default_store_path
    from ..store import ExecutionStore

    store = ExecutionStore(default_store_path(root))
    execution = store.cancel(execution_id, by="cli", wait=0 if no_wait else wait_seconds)
    if as_json:
        click.echo(json_text(execution.to_dict()))
    name = f"execution {execution.id} (workflow {execution.workflow})"
    if execution.status is State.CANCELLED:
        if not as_json:
            click.echo(f"{name}: cancelled")
        return
    if execution.status is State.RUNNING:
        owner = f"its runner, pid {execution.pid} on {execution.host},"
        if no_wait:
            if not as_json:
                click.echo(f"{name}: cancel requested; {owner} stops it within a second")
            return
        _fail(
            f"{name} still runs {wait_seconds:g} s after the cancel request: {owner} has not "
            "ended it (the request stays; `workflow status` shows when it ends)",
            EXIT_FAILED,
        )
    # It ended another way while the request was on its way (or its runner died meanwhile).
    detail = f" ({execution.error})" if execution.error else ""
    _fail(f"{name} ended {execution.status} before the cancel reached it{detail}", EXIT_FAILED)
