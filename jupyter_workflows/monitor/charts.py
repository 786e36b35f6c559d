"""Altair charts of the execution history: durations, success rates, task durations, Gantt.

Each function returns an Altair chart: displayed in a notebook as is, saved offline with
``chart.save("x.png")`` (vl-convert) or ``save_chart``. Data comes from the project's store
by default (``project_root``, else the working directory's project), or from ``store_or_df``: an
``ExecutionStore`` (or its directory), or a DataFrame (pandas, polars, pyarrow) such as
``jupyter_workflows.history(limit=None)`` for the run charts, or a ``task_runs`` query with a
``workflow`` column for ``task_durations``. Charts raise ValueError when there is nothing to
draw, saying what was looked for. Altair is imported inside the functions, never at import.
Displayed charts render offline: the first chart drawn enables the ``jupyter-workflows``
renderer (``chart_render``) when Altair's is still its default.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..store.frames import Since, history_table, open_store, resolve_since, to_records

if TYPE_CHECKING:
    import altair as alt

    from ..execution.records import Execution, TaskRecord
    from ..store import ExecutionStore

STATUS_COLORS = {
    "succeeded": "#2ca02c", "failed": "#d62728", "timed_out": "#ff7f0e",
    "cancelled": "#bcbd22", "crashed": "#9467bd", "running": "#1f77b4",
    "skipped": "#c7c7c7", "pending": "#e5e5e5",
}  # fmt: skip
WIDTH, HEIGHT = 520, 220
FORMATS = (".png", ".svg", ".html")


def durations(
    store_or_df: Any = None,
    *,
    workflow: str | None = None,
    since: Since = None,
    project_root: str | Path | None = None,
) -> alt.LayerChart:
    """Duration of each finished run over time, one line per workflow, points by status."""
    alt = _altair()

    runs = [r for r in _runs(store_or_df, workflow, since, project_root) if _has(r, "duration_ms")]
    if not runs:
        raise ValueError(f"no finished runs{_scope(workflow, since)} to chart")
    values = [
        {
            "id": r["id"], "workflow": r["workflow"], "status": r["status"],
            "started_at": _iso(r["started_at"]), "seconds": r["duration_ms"] / 1000,
        }
        for r in runs
    ]  # fmt: skip
    base = alt.Chart(_inline(values)).encode(
        x=alt.X("started_at:T", title="started (UTC)", scale=alt.Scale(type="utc")),
        y=alt.Y("seconds:Q", title="duration (s)"),
        color=alt.Color("workflow:N", title="workflow"),
    )
    points = base.mark_point(filled=True, size=60).encode(
        shape=alt.Shape("status:N", title="status"),
        tooltip=["workflow:N", "id:N", "status:N", "started_at:T", "seconds:Q"],
    )
    return (base.mark_line() + points).properties(title="Run durations", width=WIDTH, height=HEIGHT)


def success_rate(
    store_or_df: Any = None,
    *,
    workflow: str | None = None,
    since: Since = None,
    project_root: str | Path | None = None,
) -> alt.LayerChart:
    """Share of finished runs that succeeded, one bar per workflow, labelled "n/m (pct)"."""
    alt = _altair()

    values = _success_rows(_runs(store_or_df, workflow, since, project_root))
    if not values:
        raise ValueError(f"no finished runs{_scope(workflow, since)} to chart")
    base = alt.Chart(_inline(values)).encode(
        y=alt.Y("workflow:N", title=None, sort="ascending"),
        x=alt.X(
            "success_rate:Q",
            title="success rate",
            scale=alt.Scale(domain=[0, 1]),
            axis=alt.Axis(format="%"),
        ),
    )
    bars = base.mark_bar().encode(
        color=alt.Color(
            "success_rate:Q",
            scale=alt.Scale(domain=[0, 0.5, 1], range=["#d62728", "#ff7f0e", "#2ca02c"]),
            legend=None,
        ),
        tooltip=["workflow:N", "succeeded:Q", "finished:Q", "runs:Q", "success_rate:Q"],
    )
    labels = base.mark_text(align="left", dx=4).encode(text="label:N")
    height = max(40, 26 * len(values))
    return (bars + labels).properties(title="Success rate", width=WIDTH, height=height)


def task_durations(
    store_or_df: Any = None,
    *,
    workflow: str | None = None,
    since: Since = None,
    project_root: str | Path | None = None,
) -> alt.Chart:
    """Distribution of each task's durations over its runs (a box plot per task)."""
    alt = _altair()

    rows = _task_rows(store_or_df, workflow, since, project_root)
    if not rows:
        raise ValueError(f"no ended tasks{_scope(workflow, since)} to chart")
    several = len({r.get("workflow") for r in rows}) > 1
    values = [
        {
            "workflow": r.get("workflow"),
            "task": f"{r.get('workflow')}: {r['task_id']}" if several else r["task_id"],
            "seconds": r["duration_ms"] / 1000,
        }
        for r in rows
    ]
    height = max(40, 22 * len({v["task"] for v in values}))
    return (
        alt.Chart(_inline(values))
        .mark_boxplot(extent="min-max")
        .encode(
            x=alt.X("seconds:Q", title="duration (s)"),
            y=alt.Y("task:N", title=None, sort="ascending", axis=alt.Axis(labelLimit=320)),
            color=alt.Color("workflow:N", title="workflow"),
        )
        .properties(title="Task durations", width=WIDTH, height=height)
    )


def gantt(
    execution: str | Execution,
    store_or_df: Any = None,
    *,
    project_root: str | Path | None = None,
) -> alt.Chart:
    """The tasks of one execution on a timeline, children under their parent, by status.

    ``execution`` is an id (or unambiguous prefix) looked up in the store, or an
    ``Execution`` (what ``WorkflowOrchestrator.execute`` and ``%workflow run`` return). With a
    DataFrame of ``task_runs`` rows, ``execution`` is the id to select. Tasks that never
    started (skipped, pending) keep their row, without a bar.
    """
    alt = _altair()

    tasks, label = _gantt_tasks(execution, store_or_df, project_root)
    order, values = _gantt_rows(tasks, label)
    return (
        alt.Chart(_inline(values))
        .mark_bar()
        .encode(
            x=alt.X("start:Q", title="seconds since the first task started"),
            x2="end:Q",
            y=alt.Y("task:N", title=None, sort=order, scale=alt.Scale(domain=order)),
            color=_status_color(alt, {str(v["status"]) for v in values}),
            tooltip=["task:N", "status:N", "seconds:Q", "attempts:Q"],
        )
        .properties(title=f"Execution {label}", width=WIDTH, height=max(40, 22 * len(order)))
    )


def overview(
    store: ExecutionStore | str | Path | None = None,
    *,
    workflow: str | None = None,
    since: Since = None,
    project_root: str | Path | None = None,
) -> alt.VConcatChart:
    """Durations, success rate and task durations stacked: what ``workflow monitor --chart``
    writes. Reads the store (an ``ExecutionStore``, its directory, or the project's)."""
    alt = _altair()

    source = open_store(store, project_root)
    charts: list[Any] = [
        durations(source, workflow=workflow, since=since),
        success_rate(source, workflow=workflow, since=since),
        task_durations(source, workflow=workflow, since=since),
    ]
    return alt.vconcat(*charts).resolve_scale(color="independent")


def save_chart(chart: Any, path: str | Path) -> Path:
    """Write ``chart`` to ``path`` by its suffix: .png, .svg (vl-convert) or a self-contained
    .html (scripts inlined). No network is used. ValueError for any other suffix."""
    target = Path(path)
    suffix = target.suffix.lower()
    if suffix not in FORMATS:
        raise ValueError(f"cannot write '{target.name}': use a .png, .svg or .html file name")
    if suffix == ".png":
        chart.save(str(target), format="png", scale_factor=2)
    elif suffix == ".svg":
        chart.save(str(target), format="svg")
    else:
        # inline=True embeds vega and vega-lite, so the page also works offline.
        chart.save(str(target), format="html", inline=True)
    return target


# -- data -------------------------------------------------------------------------------------


def _altair() -> Any:
    """Altair, with charts set to render offline (see ``chart_render``) unless the user chose
    a renderer of their own."""
    import altair as alt

    from .chart_render import use_offline_renderer

    use_offline_renderer()
    return alt


def _inline(values: list[dict[str, Any]]) -> dict[str, Any]:
    """Rows as chart data. A plain dict, not ``alt.Data``: Altair then moves the rows to the
    spec's top-level ``datasets`` without validating each one against the schema, which took
    over a second for 10,000 rows; and no 5,000-row limit applies, as it would to a frame."""
    return {"values": values}


def _is_store(source: Any) -> bool:
    return source is None or isinstance(source, (str, Path)) or hasattr(source, "task_metrics")


def _runs(
    source: Any, workflow: str | None, since: Since, project_root: str | Path | None
) -> list[dict[str, Any]]:
    if _is_store(source):
        store = open_store(source, project_root)
        return list(history_table(store, None, workflow, None, since).to_pylist())
    return _filtered(to_records(source), workflow, since)


def _task_rows(
    source: Any, workflow: str | None, since: Since, project_root: str | Path | None
) -> list[dict[str, Any]]:
    if not _is_store(source):
        return [r for r in _filtered(to_records(source), workflow, since) if _has(r, "duration_ms")]
    store = open_store(source, project_root)
    return [dict(row) for row in store.task_durations(workflow, resolve_since(since))]


def _filtered(rows: list[dict[str, Any]], workflow: str | None, since: Since) -> list[dict]:
    """Rows of a caller's DataFrame narrowed like the store's queries narrow theirs."""
    moment = resolve_since(since)
    if workflow is not None:
        rows = [r for r in rows if r.get("workflow") == workflow]
    if moment is not None:
        start = moment.timestamp()
        rows = [r for r in rows if _has(r, "started_at") and _epoch(r["started_at"]) >= start]
    return rows


def _success_rows(runs: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per workflow: runs, finished, succeeded and the rate over finished runs."""
    tally: dict[str, dict[str, int]] = {}
    for run in runs:
        counts = tally.setdefault(run["workflow"], {"runs": 0, "finished": 0, "succeeded": 0})
        counts["runs"] += 1
        if run["status"] not in ("pending", "running"):
            counts["finished"] += 1
        counts["succeeded"] += run["status"] == "succeeded"
    rows = []
    for name, c in sorted(tally.items()):
        if c["finished"]:
            rate = c["succeeded"] / c["finished"]
            label = f"{c['succeeded']}/{c['finished']} ({rate:.0%})"
            rows.append({"workflow": name, **c, "success_rate": rate, "label": label})
    return rows


def _gantt_tasks(
    execution: Any, source: Any, project_root: str | Path | None
) -> tuple[list[TaskRecord], str]:
    """The task records to draw and a short name for the execution."""
    if not isinstance(execution, str):
        return list(execution.tasks.values()), execution.id[:8]
    if _is_store(source):
        record = open_store(source, project_root).get_execution(execution)
        return list(record.tasks.values()), record.id[:8]
    rows = [r for r in to_records(source) if r.get("execution_id", execution) == execution]
    if not rows:
        raise ValueError(f"no task rows of execution {execution} in the data given")
    return [_task_record(r) for r in rows], execution[:8]


def _gantt_rows(tasks: list[TaskRecord], label: str) -> tuple[list[str], list[dict[str, Any]]]:
    """The y order (children right under their parent) and one bar per task that started."""
    from ..ui.text import as_tree

    now = datetime.now(timezone.utc).timestamp()
    spans = {
        t.id: (t.started_at, t.ended_at if t.ended_at is not None else now)  # or running
        for t in tasks
        if t.started_at is not None
    }
    if not spans:
        raise ValueError(f"no task of execution {label} has started: nothing to chart")
    origin = min(start for start, _ in spans.values())
    # A task of a few ms would be an invisible bar: draw every bar at least this wide.
    least = (max(end for _, end in spans.values()) - origin) / 200
    order, values = [], []
    for depth, task in as_tree(tasks):
        row = "· " * depth + task.id
        if task.id not in spans:  # a row without a bar: say why
            order.append(f"{row} ({task.status})")
            continue
        order.append(row)
        start, end = (moment - origin for moment in spans[task.id])
        values.append(
            {
                "task": row, "status": str(task.status), "start": start,
                "end": max(end, start + least), "seconds": round(end - start, 3),
                "attempts": len(task.attempts) or None,
            }
        )  # fmt: skip
    return order, values


def _task_record(row: dict[str, Any]) -> TaskRecord:
    from ..execution.records import TaskRecord
    from ..execution.states import State

    return TaskRecord(
        id=row["task_id"],
        parent=row.get("parent"),
        status=State(row.get("status") or "pending"),
        started_at=_epoch(row["started_at"]) if _has(row, "started_at") else None,
        ended_at=_epoch(row["ended_at"]) if _has(row, "ended_at") else None,
    )


def _status_color(alt: Any, present: set[str]) -> Any:
    """Colour by status, the same colour for a status in every chart; legend: those present."""
    shown = [s for s in STATUS_COLORS if s in present] + sorted(present - set(STATUS_COLORS))
    return alt.Color(
        "status:N",
        title="status",
        scale=alt.Scale(domain=shown, range=[STATUS_COLORS.get(s, "#7f7f7f") for s in shown]),
    )


def _has(row: dict[str, Any], key: str) -> bool:
    value = row.get(key)
    return value is not None and value == value  # NaN != NaN


def _epoch(value: Any) -> float:
    """Epoch seconds of a datetime (naive means local time), pandas Timestamp or number."""
    return float(value) if isinstance(value, (int, float)) else value.timestamp()


def _iso(value: Any) -> Any:
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(value, tz=timezone.utc).isoformat()
    return value.isoformat() if hasattr(value, "isoformat") else value


def _scope(workflow: str | None, since: Since) -> str:
    parts = [f" of workflow '{workflow}'" if workflow else "", f" since {since}" if since else ""]
    return "".join(parts)
