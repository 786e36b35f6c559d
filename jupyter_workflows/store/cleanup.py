"""Removing old executions: index rows, journals and artifacts, never a run still going."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import duckdb

TABLES = ("logs", "attempts", "task_runs", "journals")  # keyed by execution_id


@dataclass
class CleanupReport:
    """What a clean-up removed (or, with dry_run, would remove)."""

    cutoff: datetime
    dry_run: bool
    executions: list[str] = field(default_factory=list)
    journals: int = 0
    artifact_dirs: int = 0
    bytes: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "cutoff": self.cutoff.isoformat(),
            "dry_run": self.dry_run,
            "executions": len(self.executions),
            "journals": self.journals,
            "artifact_dirs": self.artifact_dirs,
            "bytes": self.bytes,
        }


def old_executions(con: duckdb.DuckDBPyConnection, cutoff: datetime) -> list[str]:
    """Finished executions that started before ``cutoff`` (a running one is never old)."""
    rows = con.execute(
        "SELECT id FROM executions WHERE started_at < ? AND status NOT IN ('running', 'pending')"
        " ORDER BY started_at",
        [cutoff],
    ).fetchall()
    return [row[0] for row in rows]


def remove(
    con: duckdb.DuckDBPyConnection,
    ids: list[str],
    files: list[tuple[list[Path], Path]],
    report: CleanupReport,
) -> None:
    """Delete the rows of ``ids`` and their files ((places of the journal, artifacts folder)
    for each), counting what goes."""
    for journals, artifacts in files:
        for journal in journals:
            if journal.exists():
                report.journals += 1
                report.bytes += journal.stat().st_size
        if artifacts.is_dir():
            report.artifact_dirs += 1
            report.bytes += sum(p.stat().st_size for p in artifacts.rglob("*") if p.is_file())
    if report.dry_run or not ids:
        return
    # Files before rows: a journal left without its rows would be ingested again by the next
    # refresh and the execution would come back; rows left without files are harmless and go
    # with the next clean-up.
    for journals, artifacts in files:
        for journal in journals:
            journal.unlink(missing_ok=True)
        shutil.rmtree(artifacts, ignore_errors=True)
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute(
            "CREATE OR REPLACE TEMP TABLE doomed AS SELECT unnest(?::VARCHAR[]) AS id", [ids]
        )
        for table in TABLES:
            con.execute(f"DELETE FROM {table} WHERE execution_id IN (SELECT id FROM doomed)")
        con.execute("DELETE FROM executions WHERE id IN (SELECT id FROM doomed)")
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
