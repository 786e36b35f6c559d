"""The store's read API: one named method per query, on the store and on a snapshot of it.

``Reads`` defines every read once over a connection it asks its subclass for:
``ExecutionStore`` opens the index (lock, refresh) for each call, ``StoreView`` (what
``store.snapshot()`` yields) runs them all on the one session it holds. The SQL itself lives in
``queries`` (history, the execution list, logs) and ``metrics`` (aggregates), imported by the
method that runs them: a process that only records (``workflow run``) never loads them.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Concatenate, ParamSpec, TypeVar

from .loading import load_execution, resolve_id

if TYPE_CHECKING:
    import duckdb

    from ..execution.records import Execution
    from .models import (
        DurationMedian,
        ExecutionPage,
        ExecutionSummary,
        LatestRun,
        LogLine,
        RunMetrics,
        TaskDuration,
        TaskMetrics,
        WorkflowMetrics,
    )

P = ParamSpec("P")
T = TypeVar("T")


class Reads:
    """Every read of the index; ``since`` (naive means local time) bounds the start time,
    ``workflow`` and ``status`` narrow to one name and one state."""

    def _read(
        self,
        query: Callable[Concatenate[duckdb.DuckDBPyConnection, P], T],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        """``query(con, *args, **kwargs)`` on an up-to-date connection to the index."""
        raise NotImplementedError

    def get_execution(self, id_or_prefix: str, *, logs: int = 0) -> Execution:
        """The execution with this id or unambiguous id prefix, tasks ordered by start time.

        ``logs=N`` fills each task's ``log_tail`` with its last N lines. Raises
        ExecutionNotFound or AmbiguousExecutionId.
        """
        return self._read(_execution, id_or_prefix, logs)

    def history(
        self,
        limit: int | None = 20,
        workflow: str | None = None,
        status: str | None = None,
        since: datetime | None = None,
    ) -> list[ExecutionSummary]:
        """Executions newest first, with how many of their tasks failed; ``since`` (naive
        means local time) bounds the start."""
        from .queries import history

        return self._read(history, limit, workflow, status, since)

    def logs(
        self, execution_id: str, task_id: str | None = None, tail: int | None = None
    ) -> list[LogLine]:
        """Output lines of an execution (id or prefix), optionally of one task, or the last N."""
        return self._read(_logs, execution_id, task_id, tail)

    def execution_page(
        self,
        *,
        workflow: str | None = None,
        status: str | None = None,
        since: datetime | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> ExecutionPage:
        """``limit`` executions from ``offset`` on, newest first, and the total matching."""
        from .queries import execution_page

        return self._read(execution_page, workflow, status, since, limit, offset)

    def count_executions(
        self,
        workflow: str | None = None,
        status: str | None = None,
        since: datetime | None = None,
    ) -> int:
        """How many executions match the filters."""
        from .queries import count_executions

        return self._read(count_executions, workflow, status, since)

    def latest_runs(self) -> dict[str, LatestRun]:
        """Each recorded workflow's newest execution, by workflow name."""
        from .queries import latest_runs

        return self._read(latest_runs)

    def run_metrics(self, workflow: str | None = None, since: datetime | None = None) -> RunMetrics:
        """runs, succeeded, failed, success_rate, avg_ms, p50_ms, p95_ms over all runs."""
        from .metrics import run_metrics

        return self._read(run_metrics, workflow, since)

    def workflow_metrics(
        self, workflow: str | None = None, since: datetime | None = None
    ) -> list[WorkflowMetrics]:
        """Per workflow: runs, succeeded, failed, success_rate, durations, last run."""
        from .metrics import workflow_metrics

        return self._read(workflow_metrics, workflow, since)

    def task_metrics(
        self, workflow: str | None = None, since: datetime | None = None
    ) -> list[TaskMetrics]:
        """Per (workflow, task_id): runs, failures, retries, avg_ms, p50_ms, p95_ms."""
        from .metrics import task_metrics

        return self._read(task_metrics, workflow, since)

    def task_durations(
        self, workflow: str | None = None, since: datetime | None = None
    ) -> list[TaskDuration]:
        """Every task run with a duration (workflow, execution_id, task_id, status,
        duration_ms), by workflow and task id."""
        from .metrics import task_durations

        return self._read(task_durations, workflow, since)

    def finished_statuses(self, workflow: str, *, up_to: str, limit: int) -> list[str]:
        """Statuses of the workflow's last ``limit`` finished runs up to the execution
        ``up_to`` (included), newest first."""
        from .metrics import finished_statuses

        return self._read(finished_statuses, workflow, up_to, limit)

    def success_median(self, workflow: str, *, before: str, limit: int) -> DurationMedian:
        """Median duration of the workflow's last ``limit`` successful runs before the
        execution ``before``, and how many there were."""
        from .metrics import success_median

        return self._read(success_median, workflow, before, limit)

    def success_durations(self, workflow: str, *, before: str, limit: int) -> list[float]:
        """Durations (ms) of the workflow's last ``limit`` successful runs before the
        execution ``before``, newest first."""
        from .metrics import success_durations

        return self._read(success_durations, workflow, before, limit)

    def recent_finished(
        self, workflow: str, limit: int
    ) -> list[tuple[str, str, float, float | None]]:
        """(id, status, started_at, duration_ms) of the workflow's last ``limit`` finished
        runs, oldest first."""
        from .metrics import recent_finished

        return self._read(recent_finished, workflow, limit)


class StoreView(Reads):
    """Reads on one open session of the index; see ``ExecutionStore.snapshot``."""

    def __init__(self, con: duckdb.DuckDBPyConnection):
        self._con = con

    def _read(
        self,
        query: Callable[Concatenate[duckdb.DuckDBPyConnection, P], T],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        return query(self._con, *args, **kwargs)


def _execution(con: duckdb.DuckDBPyConnection, id_or_prefix: str, logs: int) -> Execution:
    return load_execution(con, resolve_id(con, id_or_prefix), logs)


def _logs(
    con: duckdb.DuckDBPyConnection, execution_id: str, task_id: str | None, tail: int | None
) -> list[LogLine]:
    from .queries import logs

    return logs(con, resolve_id(con, execution_id), task_id, tail)
