"""One cell's IOPub messages as notebook outputs, live log lines and recorded values.

What nbclient does with a cell's messages (execution count, streams merged as they arrive,
``clear_output`` with and without ``wait``, display updates by ``display_id`` across cells),
plus: stream text goes to the task's log line by line as it arrives, a traceback goes to its
stderr without colour codes, and ``record`` bundles are collected.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from ..base import LineSink
from .record import recorded_value

_ANSI_RE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
OUTPUT_TYPES = frozenset({"stream", "display_data", "execute_result", "error"})


class CellOutputs:
    """Collects one cell's outputs; ``displays`` is shared by all cells of a notebook."""

    def __init__(
        self,
        cell: Any,
        displays: dict[str, list[Any]],
        on_line: LineSink,
        on_record: Callable[[str, Any], None],
    ):
        self.cell = cell
        self.displays = displays
        self.on_line = on_line
        self.on_record = on_record
        self._partial: dict[str, str] = {}
        self._clear_before_next = False
        cell.outputs = []

    def handle(self, msg: dict[str, Any]) -> None:
        kind = msg["header"]["msg_type"]
        content = msg["content"]
        if kind == "execute_input":
            self.cell.execution_count = content.get("execution_count")
        elif kind == "clear_output":
            if content.get("wait"):
                self._clear_before_next = True
            else:
                self._clear()
        elif kind == "update_display_data":
            display_id = (content.get("transient") or {}).get("display_id")
            for output in self.displays.get(str(display_id), ()):
                output["data"] = content.get("data", {})
                output["metadata"] = content.get("metadata", {})
        elif kind in OUTPUT_TYPES:
            if self._clear_before_next:
                self._clear()
            self._add(kind, msg)

    def _add(self, kind: str, msg: dict[str, Any]) -> None:
        from nbformat.v4 import output_from_msg

        content = msg["content"]
        outputs = self.cell.outputs
        if kind == "stream":
            self._lines(content["name"], content["text"])
            last = outputs[-1] if outputs else None
            if last is not None and last.output_type == "stream" and last.name == content["name"]:
                last.text += content["text"]  # one output per run of a stream, as saved by Lab
                return
        output = output_from_msg(msg)
        if kind == "error":
            for entry in content.get("traceback") or [f"{content['ename']}: {content['evalue']}"]:
                for line in _ANSI_RE.sub("", entry).splitlines():
                    self.on_line("stderr", line)
        if kind in ("display_data", "execute_result"):
            found = recorded_value(content.get("data", {}))
            if found is not None:
                self.on_record(*found)
        display_id = (content.get("transient") or {}).get("display_id")
        if display_id:
            self.displays.setdefault(display_id, []).append(output)
        outputs.append(output)

    def _clear(self) -> None:
        self._clear_before_next = False
        self.cell.outputs = []

    def _lines(self, stream: str, text: str) -> None:
        *lines, rest = (self._partial.pop(stream, "") + text).split("\n")
        for line in lines:
            self.on_line(stream, _as_shown(line))
        if rest:
            self._partial[stream] = rest

    def flush(self) -> None:
        """End of the cell: a last line without a newline is still a line."""
        for stream, rest in self._partial.items():
            self.on_line(stream, _as_shown(rest))
        self._partial.clear()


def _as_shown(line: str) -> str:
    # A progress bar rewrites its line with '\r': keep what a terminal would end up showing.
    line = line.removesuffix("\r")
    return line.rsplit("\r", 1)[-1]
