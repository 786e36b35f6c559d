"""A workflow's own ``alerts``: rules written in the original format, checked after each run.

Each rule's ``condition`` (JavaScript-style, ``definition.js_conditions``) is evaluated over
what a run ended as; when it holds, its ``template``, rendered over the same names, is the
alert's text, sent to the rule's ``channels``. The names, as the original format had them:

- ``execution``: ``id``, ``status`` in the original's words (``completed``, ``failed`` for
  failed, timed out or crashed, ``cancelled``), ``state`` (this project's state name),
  ``duration`` in milliseconds, ``error``, ``workflow``;
- ``workflow``: ``name``, ``version``, ``description``, ``expected_duration`` in milliseconds
  (null when unset, so a rule over it never fires);
- ``metrics``: over the workflow's last ``success_window`` finished runs, this one included:
  ``successRate`` (percent), ``totalRuns``, ``successfulRuns``, ``failedRuns``;
- ``error``: ``message`` (the first failed task's error, else the run's) and ``task``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..definition.js_conditions import parse_js_condition, render_template
from ..execution.states import State
from .alert import Alert

if TYPE_CHECKING:
    from ..definition.model import Workflow
    from ..execution.records import Execution
    from .history import History

LOG_LINES = 20
_ORIGINAL_STATUS = {State.SUCCEEDED: "completed", State.CANCELLED: "cancelled"}


def alert_scope(
    store: History, execution: Execution, workflow: Workflow, window: int
) -> dict[str, Any]:
    """The names conditions and templates see for one finished execution; metrics over the
    last ``window`` finished runs."""
    statuses = store.finished_statuses(execution.workflow, up_to=execution.id, limit=window)
    succeeded = statuses.count("succeeded")
    failed = [t for t in execution.tasks.values() if t.status.is_failure]
    first = failed[0] if failed else None
    message = (first.error if first else None) or execution.error or ""
    duration = None if execution.duration is None else round(execution.duration * 1000.0)
    expected = workflow.expected_duration
    return {
        "execution": {
            "id": execution.id,
            "status": _ORIGINAL_STATUS.get(execution.status, "failed"),
            "state": str(execution.status),
            "duration": duration,
            "error": execution.error,
            "workflow": execution.workflow,
        },
        "workflow": {
            "name": workflow.name,
            "version": workflow.version,
            "description": workflow.description,
            "expected_duration": None if expected is None else expected * 1000.0,
        },
        "metrics": {
            "successRate": round(100.0 * succeeded / len(statuses), 2) if statuses else None,
            "totalRuns": len(statuses),
            "successfulRuns": succeeded,
            "failedRuns": len(statuses) - succeeded,
        },
        "error": {"message": message, "task": first.id if first else None},
    }


def workflow_alerts(
    store: History, execution: Execution, workflow: Workflow, window: int
) -> list[Alert]:
    """An alert for each of the workflow's rules whose condition holds for ``execution``."""
    if not workflow.alerts:
        return []
    scope = alert_scope(store, execution, workflow, window)
    failed = [t for t in execution.tasks.values() if t.status.is_failure]
    first = failed[0] if failed else None
    alerts = []
    for rule in workflow.alerts:
        if not parse_js_condition(rule.condition).holds(scope):
            continue
        text = render_template(rule.template, scope)
        alerts.append(
            Alert(
                rule=f"alert:{rule.name}",
                workflow=execution.workflow,
                execution_id=execution.id,
                title=text,
                summary=f"alert '{rule.name}': {rule.condition}",
                failing_task=first.id if first else None,
                log_tail=list(first.log_tail[-LOG_LINES:]) if first else [],
                figures={"status": str(execution.status), **scope["metrics"]},
                severity="error" if execution.status.is_failure else "warning",
                channels=list(rule.channels),
            )
        )
    return alerts
