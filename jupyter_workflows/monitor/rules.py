"""Alert rules: functions that read the history of one finished execution and return alerts.

Each rule takes the store (or one snapshot of it), the finished ``Execution`` (loaded with its
last log lines) and a ``RuleConfig``, and returns a list of ``Alert`` (empty when the rule does
not fire). Rules keep no counters: every figure comes from the store's named reads, so they
cannot drift from the history.

``evaluate_rules`` runs the rules a workflow's ``notifications`` enable; ``load_alert_config``
reads the ``alerts`` section of ``workflows/config.json``. Log lines and messages put into an
alert are redacted: the value of any environment variable whose name looks secret
(PASSWORD, TOKEN, KEY, SECRET) is replaced by ``***``.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError
from ..execution.states import State
from ..plugins import ALERT_CHANNELS
from .alert import Alert

if TYPE_CHECKING:
    from ..definition.model import Notifications, Workflow
    from ..execution.records import Execution
    from ..store import ExecutionStore
    from ..store.view import Reads


# A cancelled run was stopped on purpose: it counts against the success rate but is no failure
# to alert on by itself.
FAILED_RUN = frozenset({State.FAILED, State.TIMED_OUT, State.CRASHED})
LOG_LINES = 20
SECRET_NAME = re.compile(r"PASSWORD|PASSWD|TOKEN|KEY|SECRET", re.IGNORECASE)
# Very short values ("1", "no") would redact ordinary text everywhere and hide nothing.
MIN_SECRET_LENGTH = 4


@dataclass(frozen=True)
class RuleConfig:
    success_window: int = 20
    success_threshold: float = 0.9
    min_runs: int = 5
    slow_factor: float = 2.0
    slow_window: int = 20
    # Against a median, a run must also be this many seconds slower: a 5 ms workflow taking
    # 12 ms is scheduling noise, not a slow run. An explicit expected_duration has no floor.
    slow_min_excess: float = 0.25


@dataclass(frozen=True)
class AlertConfig:
    enabled: bool = True
    channels: list[str] = field(default_factory=lambda: ["console"])
    rules: RuleConfig = field(default_factory=RuleConfig)


# -- configuration ---------------------------------------------------------------------------


def load_alert_config(project_root: str | Path) -> AlertConfig:
    """The ``alerts`` section of the project's configuration file (defaults if absent).

    Keys: enabled (bool), channels (list of names), success_rate_threshold (0..1),
    success_window (int >= 1), slow_factor (> 1). Raises ConfigError naming the bad key.
    """
    from ..project import config_file, read_config

    path = config_file(Path(project_root))
    section = read_config(Path(project_root)).get("alerts")
    if section is None:
        return AlertConfig()
    if not isinstance(section, dict):
        raise ConfigError(f"{path}: 'alerts' must be an object")
    return _alert_config(section, path)


def _alert_config(section: dict[str, Any], path: Path) -> AlertConfig:
    def bad(key: str, expected: str) -> ConfigError:
        return ConfigError(f"{path}: 'alerts.{key}' must be {expected}, got {section[key]!r}")

    enabled = section.get("enabled", True)
    if not isinstance(enabled, bool):
        raise bad("enabled", "true or false")
    channels = section.get("channels", ["console"])
    if not isinstance(channels, list) or not all(isinstance(c, str) for c in channels):
        raise bad("channels", "a list of channel names")
    for name in channels:
        if name.strip().lower() not in ALERT_CHANNELS:
            known = ", ".join(ALERT_CHANNELS.names())
            raise bad("channels", f"a list of channel names ({known})")
    defaults = RuleConfig()
    threshold = section.get("success_rate_threshold", defaults.success_threshold)
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)):
        raise bad("success_rate_threshold", "a number between 0 and 1")
    if not 0 <= threshold <= 1:
        raise bad("success_rate_threshold", "a number between 0 and 1")
    window = section.get("success_window", defaults.success_window)
    if isinstance(window, bool) or not isinstance(window, int) or window < 1:
        raise bad("success_window", "a whole number of runs (>= 1)")
    factor = section.get("slow_factor", defaults.slow_factor)
    if isinstance(factor, bool) or not isinstance(factor, (int, float)) or factor <= 1:
        raise bad("slow_factor", "a number above 1")
    rules = RuleConfig(
        success_window=window, success_threshold=float(threshold), slow_factor=float(factor)
    )
    return AlertConfig(enabled=enabled, channels=list(channels), rules=rules)


# -- redaction -------------------------------------------------------------------------------


def secret_values(env: Mapping[str, str] | None = None) -> list[str]:
    """Values of environment variables whose names look secret, longest first."""
    env = os.environ if env is None else env
    values = {v for k, v in env.items() if SECRET_NAME.search(k) and len(v) >= MIN_SECRET_LENGTH}
    return sorted(values, key=len, reverse=True)


def redact(text: str, secrets: Iterable[str]) -> str:
    for value in secrets:
        text = text.replace(value, "***")
    return text


# -- rules -----------------------------------------------------------------------------------


def workflow_failed(store: Reads, execution: Execution, config: RuleConfig) -> list[Alert]:
    """The run failed, timed out or crashed: name the first failed task and its last lines."""
    if execution.status not in FAILED_RUN:
        return []
    failed = [t for t in execution.tasks.values() if t.status.is_failure]
    first = failed[0] if failed else None  # tasks come ordered by start time
    where = f"task '{first.id}'" if first else "the run"
    cause = (first.error if first else None) or execution.error or str(execution.status)
    return [
        _alert(
            "workflow_failed",
            execution,
            title=f"workflow '{execution.workflow}' failed",
            summary=f"{where} {execution.status}: {cause}",
            failing_task=first.id if first else None,
            log_tail=list(first.log_tail[-LOG_LINES:]) if first else [],
            figures={
                "status": str(execution.status),
                "failed_tasks": [t.id for t in failed],
                "duration_ms": _ms(execution.duration),
            },
        )
    ]


def workflow_succeeded(store: Reads, execution: Execution, config: RuleConfig) -> list[Alert]:
    """An info alert for a successful run (only when ``notifications.on_completion``)."""
    if execution.status is not State.SUCCEEDED:
        return []
    duration = _ms(execution.duration)
    return [
        _alert(
            "workflow_succeeded",
            execution,
            title=f"workflow '{execution.workflow}' succeeded",
            summary=f"{len(execution.tasks)} tasks, {(duration or 0) / 1000:.1f} s",
            severity="info",
            figures={"status": "succeeded", "duration_ms": duration},
        )
    ]


def success_rate(store: Reads, execution: Execution, config: RuleConfig) -> list[Alert]:
    """Success rate of the workflow's last N finished runs (up to this one) below threshold."""
    statuses = store.finished_statuses(
        execution.workflow, up_to=execution.id, limit=config.success_window
    )
    window = len(statuses)
    if window < config.min_runs:
        return []
    succeeded = statuses.count("succeeded")
    rate = succeeded / window
    if rate >= config.success_threshold:
        return []
    return [
        _alert(
            "success_rate",
            execution,
            title=f"workflow '{execution.workflow}' success rate {rate:.0%}",
            summary=(
                f"{succeeded} of the last {window} runs succeeded "
                f"(threshold {config.success_threshold:.0%})"
            ),
            severity="warning",
            figures={
                "window": window,
                "succeeded": succeeded,
                "failed": window - succeeded,
                "success_rate": rate,
                "threshold": config.success_threshold,
            },
        )
    ]


def slow_run(
    store: Reads,
    execution: Execution,
    config: RuleConfig,
    expected_duration: float | None = None,
) -> list[Alert]:
    """Duration above ``slow_factor`` x expected_duration (seconds) or x the median of the
    workflow's last successful runs before this one (needs at least 3 of them, and the run
    must be ``slow_min_excess`` seconds over that median)."""
    duration = _ms(execution.duration)
    if duration is None:
        return []
    if expected_duration is not None:
        baseline, kind = expected_duration * 1000.0, "expected"
    else:
        median = _median_ms(store, execution, config.slow_window)
        if median is None:
            return []
        baseline, kind = median, "median"
    if baseline <= 0 or duration <= config.slow_factor * baseline:
        return []
    if kind == "median" and duration - baseline < config.slow_min_excess * 1000.0:
        return []
    return [
        _alert(
            "slow_run",
            execution,
            title=f"workflow '{execution.workflow}' ran slow",
            summary=(
                f"took {duration / 1000:.2f} s, {duration / baseline:.1f}x its "
                f"{'expected duration' if kind == 'expected' else 'median'} "
                f"of {baseline / 1000:.2f} s"
            ),
            severity="warning",
            figures={
                "duration_ms": duration,
                "baseline_ms": baseline,
                "baseline_kind": kind,
                "factor": config.slow_factor,
                "ratio": duration / baseline,
            },
        )
    ]


def _median_ms(store: Reads, execution: Execution, window: int) -> float | None:
    baseline = store.success_median(execution.workflow, before=execution.id, limit=window)
    return baseline.median_ms if baseline.runs >= 3 else None


# -- evaluation ------------------------------------------------------------------------------


def evaluate_rules(
    store: ExecutionStore,
    execution_id: str,
    config: RuleConfig,
    *,
    notifications: Notifications | None = None,
    expected_duration: float | None = None,
    env: Mapping[str, str] | None = None,
    workflow: Workflow | None = None,
) -> list[Alert]:
    """Every alert the rules raise for one finished execution, redacted.

    ``notifications`` (the workflow's; None = defaults) switches workflow_failed
    (on_failure, default on) and workflow_succeeded (on_completion, default off).
    A ``workflow`` with its own ``alerts`` gets those instead of workflow_failed,
    success_rate and slow_run (as the original format's alert list replaced its defaults).
    A running execution yields no alert.
    """
    from .workflow_alerts import workflow_alerts

    own_rules = workflow is not None and workflow.alerts is not None
    on_failure = notifications.on_failure if notifications is not None else True
    on_completion = notifications.on_completion if notifications is not None else False
    alerts: list[Alert] = []
    with store.snapshot() as view:  # one open of the index for every rule
        execution = view.get_execution(execution_id, logs=LOG_LINES)
        if not execution.status.is_terminal:
            return []
        if on_failure and not own_rules:
            alerts += workflow_failed(view, execution, config)
        if on_completion:
            alerts += workflow_succeeded(view, execution, config)
        if workflow is not None and own_rules:
            alerts += workflow_alerts(view, execution, workflow, config.success_window)
        else:
            alerts += success_rate(view, execution, config)
            alerts += slow_run(view, execution, config, expected_duration)
    secrets = secret_values(env)
    return [_redacted(alert, secrets) for alert in alerts]


def _redacted(alert: Alert, secrets: list[str]) -> Alert:
    if not secrets:
        return alert
    alert.title = redact(alert.title, secrets)
    alert.summary = redact(alert.summary, secrets)
    alert.log_tail = [redact(line, secrets) for line in alert.log_tail]
    return alert


def _alert(rule: str, execution: Execution, **fields: Any) -> Alert:
    return Alert(
        rule=rule,
        workflow=execution.workflow,
        execution_id=execution.id,
        at=time.time(),
        **fields,
    )


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000.0, 3)
