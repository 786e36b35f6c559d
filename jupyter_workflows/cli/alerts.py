"""``workflow alerts``: the alerts raised on this store (pending, sent, failed), delivering the
ones waiting (``workflow alerts deliver``), checking the set-up (``workflow alerts test``).

Only click is imported here; the channels load inside the commands.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ..plugins import ALERT_CHANNELS
from .common import EXIT_FAILED, friendly_errors
from .common import warn as _warn

if TYPE_CHECKING:
    from ..monitor.alert import Alert

STATUSES = ("pending", "sent", "failed")


@click.group("alerts", invoke_without_command=True)
@click.option("--status", type=click.Choice(STATUSES), default=None, help="Only these alerts.")
@click.option("--workflow", "workflow_name", default=None, help="Only this workflow.")
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True,
              help="At most this many alerts.")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print the alerts as JSON.")
@click.pass_context
@friendly_errors
def alerts(
    ctx: click.Context, status: str | None, workflow_name: str | None, limit: int, as_json: bool
) -> None:
    """Alerts raised on this store, newest first: pending (in the outbox, with their next
    try), sent, failed (dropped after the last attempt); and the episodes firing now."""
    if ctx.invoked_subcommand is not None:
        return
    from ..monitor.alerting import recent_alerts
    from ..monitor.episodes import open_episodes
    from ..project import default_store_path

    store = default_store_path(ctx.obj)
    records = [
        r for r in recent_alerts(store, None)
        if r.get("rule") != "internal" or status in (None, "failed")
        if (status is None or r.get("status") == status)
        and (workflow_name is None or r.get("workflow") == workflow_name)
    ][:limit]  # fmt: skip
    episodes = open_episodes(store, workflow_name)
    if as_json:
        click.echo(json.dumps({"alerts": records, "firing": episodes}, indent=2, default=str))
        return
    if not records:
        click.echo("no alerts")
    for record in records:
        click.echo(_line(record))
    for episode in episodes:
        since = datetime.fromtimestamp(float(episode.get("since") or 0))
        click.echo(
            f"firing   {episode['rule']} of {episode['workflow']} since {since:%Y-%m-%d %H:%M:%S}"
            f" ({episode.get('runs', 1)} run(s), raised by {str(episode.get('execution_id'))[:8]})"
        )


def _line(record: dict[str, Any]) -> str:
    when = datetime.fromtimestamp(float(record.get("at") or 0)).strftime("%Y-%m-%d %H:%M:%S")
    what = record.get("rule") or ""
    if record.get("state") == "resolved":
        what += " (resolved)"
    elif record.get("reminder"):
        what += " (reminder)"
    head = f"{record.get('status', '?'):<8} {when}  {what}  {record.get('workflow') or ''}"
    execution = str(record.get("execution_id") or "")[:8]
    parts = [f"{head}  {execution}".rstrip()]
    for channel in record.get("channels") or []:
        parts.append("    " + _channel(channel))
    if not record.get("channels") and record.get("error"):
        parts.append(f"    {record['error']}")
    return "\n".join(parts)


def _channel(channel: dict[str, Any]) -> str:
    name, attempts = channel.get("channel"), channel.get("attempts", 0)
    if channel.get("ok") is True:
        return f"{name}: sent (attempt {attempts})"
    if channel.get("ok") is False:
        return f"{name}: failed after {attempts} attempt(s): {channel.get('error')}"
    next_at = channel.get("next_at")
    when = datetime.fromtimestamp(float(next_at)).strftime("%H:%M:%S") if next_at else "?"
    tried = f", {attempts} attempt(s), last: {channel.get('error')}" if attempts else ""
    return f"{name}: pending, next try {when}{tried}"


@alerts.command("deliver")
@click.option("--now", "force", is_flag=True, help="Try every pending alert now, backoff or not.")
@click.option("--timeout", type=click.FloatRange(min=0.1), default=30.0, show_default=True,
              help="Seconds to spend at most.")  # fmt: skip
@click.pass_obj
@friendly_errors
def deliver(root: Path, force: bool, timeout: float) -> None:
    """Deliver the alerts waiting in the outbox (those due, or all with --now); exit 1 if any
    is still pending or failed."""
    from ..monitor.alerting import AlertManager, recent_alerts
    from ..monitor.rules import load_alert_config
    from ..project import default_store_path
    from ..store import ExecutionStore

    store = ExecutionStore(default_store_path(root))
    before = {r["key"] for r in recent_alerts(store.path, None) if r.get("status") == "pending"}
    manager = AlertManager(
        store, config=load_alert_config(root), background=False, project_root=root
    )
    manager.deliver_pending(deadline=timeout, force=force)
    after = {r["key"]: r for r in recent_alerts(store.path, None) if r.get("key") in before}
    for key in sorted(before):
        record = after.get(key)
        if record is not None:
            click.echo(_line(record))
    counts = {s: sum(1 for r in after.values() if r.get("status") == s) for s in STATUSES}
    click.echo(f"{counts['sent']} sent, {counts['failed']} failed, {counts['pending']} pending")
    if counts["pending"] or counts["failed"]:
        sys.exit(EXIT_FAILED)


@alerts.command("test")
@click.option("--channel", "channel_names", multiple=True, metavar="NAME",
              help=f"{', '.join(ALERT_CHANNELS.builtin)} or a channel a plugin adds (repeatable; "
                   "default: alerts.channels of workflows/config.json, else console).")  # fmt: skip
@click.option("--attempts", type=click.IntRange(min=1), default=3, show_default=True,
              help="Tries per channel before the delivery counts as failed.")  # fmt: skip
@click.pass_obj
@friendly_errors
def test(root: Path, channel_names: tuple[str, ...], attempts: int) -> None:
    """Send a test alert through each channel; exit 1 if any channel failed."""
    from ..monitor.alert import ChannelError
    from ..monitor.channels import CREDENTIALS, DeliveryResult, deliver, make_channel
    from ..secrets.credentials import credentials

    names = list(dict.fromkeys(channel_names)) or _configured_channels(root)
    alert = _test_alert(root)
    results: list[DeliveryResult] = []
    for name in names:
        try:
            wanted = CREDENTIALS.get(name.strip().lower(), ())
            channel = make_channel(name, credentials(root, wanted, warn=_warn))
        except ChannelError as exc:  # not configured, or an unknown name
            results.append(DeliveryResult(name, False, 0, str(exc)))
            continue
        results += deliver(alert, [channel], attempts=attempts, delay=0.5)
    for result in results:
        if result.ok:
            click.echo(f"{result.channel}: ok")
        else:
            tries = f" after {result.attempts} attempt(s)" if result.attempts else ""
            click.echo(f"{result.channel}: failed{tries}: {result.error}")
    if not all(r.ok for r in results):
        sys.exit(EXIT_FAILED)


def _configured_channels(root: Path) -> list[str]:
    from ..monitor.rules import load_alert_config

    return list(load_alert_config(root).channels) or ["console"]


def _test_alert(root: Path) -> Alert:
    from ..monitor.alert import Alert

    return Alert(
        rule="test",
        workflow="(test)",
        title="Test alert from jupyter-workflows",
        summary=(
            f"This is a test alert sent by 'workflow alerts test' for the project at {root}. "
            "If you can read it, this channel is set up correctly."
        ),
        failing_task="(none: this is a test)",
        log_tail=["this is where the last log lines of a failing task appear"],
        figures={"project_root": str(root)},
        severity="info",
    )
