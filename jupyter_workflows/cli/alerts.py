"""``workflow alerts``: check the alert set-up (``workflow alerts test``).

Only click is imported here; the channels load inside the command.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ..plugins import ALERT_CHANNELS
from .common import EXIT_FAILED, friendly_errors

if TYPE_CHECKING:
    from ..monitor.alert import Alert


@click.group("alerts")
def alerts() -> None:
    """Alert channels: send a test alert to check the set-up."""


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
    from ..monitor.channels import DeliveryResult, deliver, make_channel

    names = list(dict.fromkeys(channel_names)) or _configured_channels(root)
    alert = _test_alert(root)
    results: list[DeliveryResult] = []
    for name in names:
        try:
            channel = make_channel(name)
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
