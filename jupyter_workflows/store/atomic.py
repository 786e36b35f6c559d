"""Small JSON files replaced whole: a reader sees the old content or the new, never half.

Cancel requests, recent-runs aggregates, alert episodes and outbox items, cron slot marks: each
is written aside (a name no reader lists, unique per process and thread), optionally fsync'd,
then renamed over the old file.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any


def replace_json(path: Path, data: Any, *, durable: bool = False, **dump_options: Any) -> None:
    """Write ``data`` as JSON to ``path`` by rename. ``durable`` fsyncs the content first
    (it must survive a power cut, not only a crash of this process); ``dump_options`` go to
    ``json.dump``."""
    temp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    with open(temp, "w", encoding="utf-8") as handle:
        json.dump(data, handle, **dump_options)
        if durable:
            handle.flush()
            os.fsync(handle.fileno())
    os.replace(temp, path)
