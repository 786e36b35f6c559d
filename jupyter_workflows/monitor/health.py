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
from ..store.queries import FAILED, UNFINISHED

if TYPE_CHECKING:
    from ..execution.records import Execution
    from ..store import ExecutionStore

OVERALL_SQL = f"""
SELECT count(*) AS runs,
       count(*) FILTER (WHERE status = 'succeeded') AS succeeded,
       count(*) FILTER (WHERE status IN {FAILED}) AS failed,
       count(*) FILTER (WHERE status = 'succeeded')
           / nullif(count(*) FILTER (WHERE status NOT IN {UNFINISHED}), 0) AS success_rate,
       avg(duration_ms) AS avg_ms,
       quantile_cont(duration_ms, 0.5) AS p50_ms,
       quantile_cont(duration_ms, 0.95) AS p95_ms
FROM executions
"""


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
        p95_ms, most_common_failure); ``alerts`` the last alert records of the period, newest
        first, each with its delivery outcome per channel (``ok: false`` when one failed).
        ``since`` is a datetime, a timedelta, or a string such as "7d" or "12h".
        """
        moment = resolve_since(since)
        return {
            "overall": self._overall(workflow, moment.timestamp() if moment else None),
            "workflows": self.store.workflow_metrics(workflow, moment),
            "tasks": self.store.task_metrics(workflow, moment),
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

    def _overall(self, workflow: str | None, since: float | None) -> dict[str, Any]:
        clauses: list[str] = []
        params: list[Any] = []
        if workflow is not None:
            clauses.append("workflow = ?")
            params.append(workflow)
        if since is not None:
            clauses.append("started_at >= to_timestamp(?)")
            params.append(since)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        names, rows = self.store.query(f"{OVERALL_SQL} {where}", params)
        return dict(zip(names, rows[0], strict=True))
