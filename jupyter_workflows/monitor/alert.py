"""What an alert is (``Alert``) and what a place that receives alerts must offer (``Channel``).

Rules build ``Alert`` values; channels (``channels.py``) send them. ``Alert.key()`` is the
dedupe key: the same rule for the same workflow and execution is one alert (a reminder and a
"resolved" message of an episode, see ``episodes.py``, have keys of their own).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from ..errors import WorkflowError

__all__ = ["Alert", "Channel", "ChannelError"]


@dataclass
class Alert:
    """One alert: which rule fired, for which workflow and run, and the figures behind it.

    ``rule`` is "workflow_failed", "success_rate", "slow_run", "test" or "alert:NAME" (a
    workflow's own ``alerts``); ``severity`` is
    "error", "warning" or "info"; ``at`` is a Unix time. ``state`` is "firing" (the
    condition holds: it started, or ``reminder`` says it still holds) or "resolved" (it ended).
    """

    rule: str
    workflow: str
    title: str
    summary: str
    execution_id: str | None = None
    failing_task: str | None = None
    log_tail: list[str] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)
    severity: str = "error"
    at: float = field(default_factory=time.time)
    # Where to send it when the rule says (a workflow's own alerts); None: the usual channels.
    channels: list[str] | None = None
    state: str = "firing"
    reminder: bool = False

    def key(self) -> str:
        """The dedupe key: one alert per rule, workflow and execution (and kind of message)."""
        key = f"{self.rule}:{self.workflow}:{self.execution_id}"
        if self.state == "resolved":
            return f"{key}:resolved"
        return f"{key}:reminder" if self.reminder else key

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Alert:
        """The alert ``to_dict`` described (unknown keys ignored): how the outbox keeps it."""
        names = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in names and k != "channels"})

    def text(self) -> str:
        """A plain-text body: title, summary, then the details (console and email use it)."""
        label = "RESOLVED" if self.state == "resolved" else self.severity.upper()
        lines = [f"[{label}] {self.title}", "", self.summary, ""]
        lines.append(f"Workflow:     {self.workflow}")
        if self.execution_id:
            lines.append(f"Execution:    {self.execution_id}")
        lines.append(f"Rule:         {self.rule}")
        if self.failing_task:
            lines.append(f"Failing task: {self.failing_task}")
        if self.figures:
            lines += ["", "Figures:"]
            lines += [f"  {name}: {_figure(value)}" for name, value in self.figures.items()]
        if self.log_tail:
            lines += ["", "Last log lines:"]
            lines += [f"  {line}" for line in self.log_tail]
        return "\n".join(lines) + "\n"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of every field (the generic webhook's payload)."""
        data = asdict(self)
        del data["channels"]  # where it is sent, not what it says
        data["key"] = self.key()
        return data


def _figure(value: Any) -> str:
    # Rates and durations come as floats with many digits; people read three.
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


class ChannelError(WorkflowError):
    """A channel could not send an alert, or is not configured; the message says why."""


class Channel(Protocol):
    """A place alerts go: ``send`` delivers one alert or raises ``ChannelError``."""

    name: str

    def send(self, alert: Alert) -> None: ...
