"""The executor's side of ``jupyter_workflows.record``: values found in a cell's display outputs.

``jupyter_workflows.recording.record`` displays ``{MIME: {"name": ..., "value": ...}}``; the
executor hands every display bundle here, and the values found become the task's outputs
(the last value recorded under a name wins).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ...recording import MIME


def recorded_value(data: Mapping[str, Any]) -> tuple[str, Any] | None:
    """(name, value) when a display bundle is a record, else None."""
    payload = data.get(MIME)
    if not isinstance(payload, Mapping):
        return None
    name = payload.get("name")
    if not isinstance(name, str) or not name:
        return None
    return name, payload.get("value")
