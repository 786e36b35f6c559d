"""``workflow cache``: list and clear the results of tasks with ``cache:``.

Only click is imported here; the store loads inside the commands.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from .common import friendly_errors, json_text


@click.group("cache")
def cache() -> None:
    """Cached task results: list them, clear them."""


@cache.command("ls")
@click.option("--workflow", "workflow_name", default=None, help="Only this workflow.")
@click.option("--task", "task_id", default=None, help="Only this task.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.pass_obj
@friendly_errors
def ls(root: Path, workflow_name: str | None, task_id: str | None, as_json: bool) -> None:
    """List cache entries, newest first: one per workflow, task and cache key."""
    from ..ui.text import when

    entries = _store(root).cache_entries(workflow_name, [task_id] if task_id else None)
    if as_json:
        click.echo(json_text([e.to_dict() for e in entries]))
        return
    if not entries:
        click.echo("no cache entries")
        return
    from .render import _console, show
    from .render import table as new_table

    table = new_table()
    for column in ("workflow", "task", "key", "execution", "cached at"):
        table.add_column(column)
    for entry in entries:
        table.add_row(
            entry.workflow, entry.task_id, entry.key[:12], entry.execution_id[:8],
            when(entry.created_at),
        )  # fmt: skip
    show(_console(), table)


@cache.command("clear")
@click.option("--workflow", "workflow_name", default=None, help="Only this workflow's entries.")
@click.option("--task", "task_id", default=None, help="Only this task's entries.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.pass_obj
@friendly_errors
def clear(root: Path, workflow_name: str | None, task_id: str | None, as_json: bool) -> None:
    """Forget cache entries (all, or a workflow's, or a task's): those tasks run next time.

    For good: a rebuilt index does not bring them back."""
    cleared = _store(root).clear_cache(workflow_name, task_id)
    if as_json:
        click.echo(json.dumps({"cleared": cleared, "workflow": workflow_name, "task": task_id}))
        return
    narrowed = [f"workflow '{workflow_name}'"] if workflow_name else []
    narrowed += [f"task '{task_id}'"] if task_id else []
    scope = f" ({', '.join(narrowed)})" if narrowed else ""
    click.echo(f"cleared {cleared} cache entr{'y' if cleared == 1 else 'ies'}{scope}")


def _store(root: Path):  # type: ignore[no-untyped-def]
    from ..project import default_store_path
    from ..store import ExecutionStore

    return ExecutionStore(default_store_path(root))
