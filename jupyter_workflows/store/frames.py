"""History and metrics as data frames: ``history(...)`` and ``sql("SELECT ...")``.

Both return a pandas DataFrame when pandas is installed, else a polars DataFrame when polars
is, else a ``pyarrow.Table``. Timestamps come back timezone-aware in UTC. The store's tables
(``executions``, ``task_runs``, ``attempts``, ``logs``; see docs/store-schema.md) are
queryable by name in ``sql``, and every call first brings the index up to date from the
journals, so a run that just ended is there.

The store is the project's (``workflows/.executions`` under ``project_root``, by default the
project the working directory is in) unless ``store`` names another (an ``ExecutionStore`` or
its directory).
pyarrow and pandas are imported on first call, never at import.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..definition.durations import UNIT_SECONDS, parse_duration

if TYPE_CHECKING:
    import pyarrow as pa

    from . import ExecutionStore

Since = datetime | timedelta | str | None

HISTORY_COLUMNS = (
    "id", "workflow", "status", "started_at", "ended_at", "duration_ms", "trigger",
    "task_count", "failed_tasks",
)  # fmt: skip


def history(
    limit: int | None = 20,
    workflow: str | None = None,
    status: str | None = None,
    since: Since = None,
    *,
    project_root: str | Path | None = None,
    store: ExecutionStore | str | Path | None = None,
) -> Any:
    """Executions newest first, one row each, as a DataFrame (see the module docstring).

    Columns: id, workflow, status, started_at, ended_at (UTC), duration_ms, trigger,
    task_count, failed_tasks. ``limit=None`` returns every run. ``since`` is a datetime (naive
    means local time), a timedelta or a string such as ``"7d"``, ``"12h"``, ``"30m"`` (that long
    ago) or an ISO 8601 date.
    """
    table = history_table(open_store(store, project_root), limit, workflow, status, since)
    return to_frame(table)


def sql(
    query: str,
    params: list[Any] | None = None,
    *,
    project_root: str | Path | None = None,
    store: ExecutionStore | str | Path | None = None,
) -> Any:
    """Run ``query`` (DuckDB SQL, ``?`` placeholders filled from ``params``) over the store.

    The connection is read-only; a bad query raises ``StoreError`` with DuckDB's message.
    """
    return to_frame(sql_table(open_store(store, project_root), query, params))


def open_store(
    store: ExecutionStore | str | Path | None = None, project_root: str | Path | None = None
) -> ExecutionStore:
    """``store`` itself when it is a store, one at that directory, else the project's."""
    from ..project import default_store_path
    from ..project import project_root as find_project_root
    from . import ExecutionStore

    if isinstance(store, (str, Path)):
        return ExecutionStore(store)
    if store is not None:
        return store
    root = Path(project_root) if project_root is not None else find_project_root()
    return ExecutionStore(default_store_path(root))


def resolve_since(since: Since, now: datetime | None = None) -> datetime | None:
    """The moment ``since`` means: a datetime as is, a timedelta or "7d"/"12h"/"30m" before
    ``now``, or an ISO 8601 date/time (naive means local time). ValueError when it is none."""
    if since is None or isinstance(since, datetime):
        return since
    now = now or datetime.now(timezone.utc)
    if isinstance(since, timedelta):
        return now - since
    if not isinstance(since, str):
        raise ValueError(f"since: expected a datetime, timedelta or string, not {since!r}")
    text = since.strip()
    try:
        # A bare number has no obvious unit here: ask for one instead of guessing.
        float(text)
    except ValueError:
        pass
    else:
        raise ValueError(f"since: '{since}' needs a unit, such as 7d, 12h or 30m")
    try:
        return now - timedelta(seconds=parse_duration(text, unit=UNIT_SECONDS))
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"since: '{since}' is neither a duration (7d, 12h, 30m) nor an ISO 8601 date "
            "(2026-01-31 or 2026-01-31T08:00)"
        ) from None


def history_table(
    store: ExecutionStore,
    limit: int | None = 20,
    workflow: str | None = None,
    status: str | None = None,
    since: Since = None,
) -> pa.Table:
    """``history`` as a pyarrow Table, whatever DataFrame libraries are installed."""
    import pyarrow as pa

    rows = store.history(limit, workflow, status, resolve_since(since))
    utc = pa.timestamp("us", tz="UTC")
    schema = pa.schema(
        [
            ("id", pa.string()), ("workflow", pa.string()), ("status", pa.string()),
            ("started_at", utc), ("ended_at", utc), ("duration_ms", pa.float64()),
            ("trigger", pa.string()), ("task_count", pa.int64()), ("failed_tasks", pa.int64()),
        ]
    )  # fmt: skip
    columns = {name: [getattr(row, name) for row in rows] for name in HISTORY_COLUMNS}
    return pa.table(columns, schema=schema)


def sql_table(store: ExecutionStore, query: str, params: list[Any] | None = None) -> pa.Table:
    """``sql`` as a pyarrow Table, whatever DataFrame libraries are installed."""
    import pyarrow as pa

    table = store.query_arrow(query, params)
    return pa.Table.from_arrays([_utc(c) for c in table.columns], names=table.column_names)


def _utc(array: pa.Array) -> pa.Array:
    """Aware timestamps in UTC (DuckDB hands them over in its session time zone)."""
    import pyarrow as pa

    kind = array.type
    if pa.types.is_timestamp(kind) and kind.tz is not None and kind.tz != "UTC":
        return array.cast(pa.timestamp(kind.unit, tz="UTC"))
    return array


def to_frame(table: pa.Table) -> Any:
    """A pandas DataFrame if pandas is installed, else polars if installed, else ``table``."""
    try:
        import pandas  # noqa: F401
    except ImportError:
        pass
    else:
        return table.to_pandas()
    try:
        import polars
    except ImportError:
        return table
    return polars.from_arrow(table)


def to_records(data: Any) -> list[dict[str, Any]]:
    """Rows of a pandas or polars DataFrame or a pyarrow Table as dicts (missing -> None)."""
    if hasattr(data, "to_pylist"):  # pyarrow.Table
        return list(data.to_pylist())
    if hasattr(data, "to_dicts"):  # polars.DataFrame
        return list(data.to_dicts())
    if hasattr(data, "to_dict"):  # pandas.DataFrame: NaN/NaT become None
        frame = data.astype(object).where(data.notna(), None)
        return list(frame.to_dict("records"))
    raise TypeError(
        f"expected a pandas or polars DataFrame or a pyarrow Table, not {type(data).__name__}"
    )
