"""Running a notebook's code cells on a kernel, one at a time, with an event per cell.

Each code cell (empty ones and those tagged ``skip-execution`` are left alone, as nbclient
does) emits progress ``running`` then ``succeeded`` or ``failed``, labelled "cell 3/12"
(counting the cells that run, the injected parameters included). The first cell that raises
stops the notebook, unless it is tagged ``raises-exception``; ``SystemExit`` with no code or
code 0 stops it without failing, as with papermill (which still marks that cell ``failed`` in
its metadata, and so do we). Cells that do not run (markdown, empty) are marked started and
completed in turn, as papermill marks them, up to the cell that stopped the notebook.
"""

from __future__ import annotations

import queue
from dataclasses import dataclass
from typing import Any

from ..base import LineSink, ProgressSink
from . import document
from .client import POLL, died, reply
from .kernels import Kernel, KernelError
from .outputs import CellOutputs


@dataclass
class CellFailure:
    """Why the notebook stopped at a cell (``number`` counts from 1 among the cells run)."""

    number: int
    total: int
    ename: str
    evalue: str

    @property
    def message(self) -> str:
        what = f"{self.ename}: {self.evalue}" if self.evalue else self.ename
        return f"cell {self.number}/{self.total} raised {what}"


class CellRunner:
    """Executes ``nb``'s cells in place; outputs, records and the failure stay readable after."""

    def __init__(self, nb: Any, emit_line: LineSink, emit_progress: ProgressSink):
        self.nb = nb
        self.emit_line = emit_line
        self.emit_progress = emit_progress
        self.cells = [cell for cell in nb.cells if _runs(cell)]
        self.total = len(self.cells)
        self.records: dict[str, Any] = {}
        self.failure: CellFailure | None = None
        self.exited = False  # a cell ended the notebook with SystemExit(0)
        self.current: int | None = None  # number of the cell running now
        self._displays: dict[str, list[Any]] = {}

    async def run(self, client: Any, kernel: Kernel) -> None:
        number = 0
        for cell in self.nb.cells:
            document.cell_started(cell)
            if not _runs(cell):
                document.cell_finished(cell, True)
                continue
            number += 1
            self.current = number
            label = f"cell {number}/{self.total}"
            self.emit_progress(number, self.total, label, "running")
            content = await self._execute(client, kernel, cell, label)
            status = content.get("status", "error")
            failed = status != "ok" and "raises-exception" not in _tags(cell)
            self.exited = failed and _is_clean_exit(content)
            if failed and not self.exited:
                self.failure = CellFailure(
                    number, self.total, _ename(content), str(content.get("evalue", ""))
                )
            document.cell_finished(cell, not failed)
            ok = not failed or self.exited
            self.emit_progress(number, self.total, label, "succeeded" if ok else "failed")
            if failed:
                break
        self.current = None

    def interrupted(self, ename: str, evalue: str) -> None:
        """The task was stopped mid-cell: say so in the running cell's outputs."""
        if self.current is None:
            return
        from nbformat.v4 import new_output

        cell = self.cells[self.current - 1]
        cell.outputs.append(
            new_output("error", ename=ename, evalue=evalue, traceback=[f"{ename}: {evalue}"])
        )
        document.cell_finished(cell, False)
        self.failure = CellFailure(self.current, self.total, ename, evalue)
        self.emit_progress(self.current, self.total, f"cell {self.current}/{self.total}", "failed")

    def failed_position(self) -> int | None:
        """Index in ``nb.cells`` of the cell that failed."""
        if self.failure is None:
            return None
        failed = self.cells[self.failure.number - 1]
        return next(i for i, cell in enumerate(self.nb.cells) if cell is failed)

    async def _execute(self, client: Any, kernel: Kernel, cell: Any, label: str) -> Any:
        outputs = CellOutputs(cell, self._displays, self.emit_line, self._record)
        cell.execution_count = None
        msg_id = client.execute(
            cell.source,
            silent=False,
            store_history=True,
            allow_stdin=False,
            stop_on_error=False,  # we stop ourselves; the kernel would abort later requests
        )
        doing = f"running {label}"
        try:
            while True:
                msg = await _iopub(client, kernel, doing)
                if msg["parent_header"].get("msg_id") != msg_id:
                    continue  # a late message of an earlier request
                if msg["msg_type"] == "status":
                    if msg["content"].get("execution_state") == "idle":
                        break
                    continue
                outputs.handle(msg)
        finally:
            outputs.flush()
        answer = await reply(client.get_shell_msg, msg_id, kernel, None, doing)
        content = answer["content"]
        if cell.get("execution_count") is None:
            cell.execution_count = content.get("execution_count")
        return content

    def _record(self, name: str, value: Any) -> None:
        self.records[name] = value


async def _iopub(client: Any, kernel: Kernel, doing: str) -> dict[str, Any]:
    while True:
        try:
            return await client.get_iopub_msg(timeout=POLL)  # type: ignore[no-any-return]
        except queue.Empty:
            if not kernel.alive():
                raise KernelError(died(kernel, doing)) from None


def _runs(cell: Any) -> bool:
    return (
        cell.get("cell_type") == "code"
        and bool(str(cell.get("source", "")).strip())
        and "skip-execution" not in _tags(cell)
    )


def _tags(cell: Any) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", ()))


def _ename(content: dict[str, Any]) -> str:
    if content.get("status") == "aborted":
        return "Aborted"
    return str(content.get("ename") or "Error")


def _is_clean_exit(content: dict[str, Any]) -> bool:
    return content.get("ename") == "SystemExit" and str(content.get("evalue", "")) in ("", "0")
