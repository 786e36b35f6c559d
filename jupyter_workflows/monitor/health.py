"""``WorkflowMonitor``: how healthy the workflows are, read from the execution store.

The monitor keeps no counters of its own: every number comes from the store's index (which
every read brings up to date from the journals), so any process (a notebook, cron, the
server) sees the same report. Metric definitions are the store's (docs/store-schema.md):
``failed`` counts failed, timed out, cancelled and crashed runs; ``success_rate`` is over
finished runs (None when none finished); durations are over finished runs, in milliseconds.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..store.frames import Since, open_store, resolve_since

if TYPE_CHECKING:
    from ..execution.records import Execution
    from ..store import ExecutionStore


class WorkflowMonitor:
    """Health of the workflows recorded in one store.

    ``store`` is an ``ExecutionStore`` or its directory; by default the store of the project
    at ``project_root`` (else the current directory).
    """

    def __init__(
        self,
        store: ExecutionStore | str | Path | None = None,
        *,
        project_root: str | Path | None = None,
    ):
        self.store = open_store(store, project_root)

    def health_report(self, workflow: str | None = None, since: Since = None) -> dict[str, Any]:
        """Run and task metrics, all workflows or one, over all history or since a moment.

        Returns ``{"overall": {...}, "workflows": [...], "tasks": [...], "alerts": [...]}``:
        ``overall`` has
        runs, succeeded, failed, success_rate, avg_ms, p50_ms, p95_ms; each workflow the same
        plus last_started_at (aware UTC datetime) and last_status; each task the store's
        ``task_metrics`` row (workflow, task_id, runs, failures, retries, avg_ms, p50_ms,
        p95_ms, reused, most_common_failure; reused tasks are not runs); ``alerts`` the last
        alert records of the period, newest first, each with its delivery outcome per channel
        (``ok: false`` when one failed).
        ``since`` is a datetime, a timedelta, or a string such as "7d" or "12h".
        """
        moment = resolve_since(since)
        with self.store.snapshot() as view:  # one open of the index: three consistent reads
            overall = view.run_metrics(workflow, moment)
            workflows = view.workflow_metrics(workflow, moment)
            tasks = view.task_metrics(workflow, moment)
        return {
            "overall": overall,
            "workflows": workflows,
            "tasks": tasks,
            "alerts": self.alerts(workflow, since=moment),
        }

    def alerts(
        self, workflow: str | None = None, *, since: Since = None, limit: int = 20
    ) -> list[dict[str, Any]]:
        """Alerts sent or attempted (``alerts.jsonl``), newest first, optionally narrowed."""
        from .alerting import recent_alerts

        moment = resolve_since(since)
        cutoff = moment.timestamp() if moment else None
        return [
            record
            for record in recent_alerts(self.store.path, limit=None)
            if (workflow is None or record.get("workflow") == workflow)
            and (cutoff is None or (record.get("at") or 0) >= cutoff)
        ][:limit]

    def record_execution(self, execution: Execution) -> None:
        """Save ``execution`` (one built or changed outside a run) as a complete record."""
        self.store.save_execution(execution)
