"""``record(name, value)``: hand a value from a running notebook to the workflow.

Inside a notebook task, ``jupyter_workflows.record("rows", 1200)`` makes ``1200`` the task's
output ``rows``, so later tasks use ``${tasks.ID.outputs.rows}``; the value is also stored with
the run. It works with any kernel the workflow starts (pre-started or reused ones too) because
it travels as a display output, like scrapbook's ``glue``: the executor collects it from the
cell's outputs, and the executed notebook keeps it.

Values must be JSON-serialisable (numbers, strings, booleans, None, lists, dicts with string
keys); numpy scalars and arrays are taken through their ``tolist()``. Anything else raises a
TypeError in the cell, which fails the cell. This module is imported inside kernels: keep it
free of heavy imports.
"""

from __future__ import annotations

import json
import re
import sys
from typing import Any

MIME = "application/vnd.jupyter-workflows.record+json"

# What a `${tasks.ID.outputs.NAME}` reference can name.
_NAME_RE = re.compile(r"[A-Za-z0-9_-]+\Z")

# Values recorded in this process, for code that runs outside a workflow (a notebook opened
# by hand, a test): ``record`` still works there and keeps the values here.
recorded: dict[str, Any] = {}


def record(name: str, value: Any) -> None:
    """Record ``value`` as the output ``name`` of the notebook task running this code."""
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise ValueError(
            f"record(): the name must be letters, digits, '_' or '-' (got {name!r}), so that "
            "later tasks can refer to it as ${tasks.ID.outputs.NAME}"
        )
    try:
        text = json.dumps(value, allow_nan=False, default=_plain)
    except (TypeError, ValueError) as exc:
        kind = type(value).__name__
        raise TypeError(
            f"record({name!r}, ...): a {kind} value is not JSON-serialisable ({exc}); "
            "record numbers, strings, booleans, None, lists or dicts"
        ) from None
    plain = json.loads(text)  # what later tasks will see (tuples become lists, and so on)
    recorded[name] = plain
    _display(name, plain, text)


def _plain(value: Any) -> Any:
    """numpy scalars and arrays (and pandas Series) become Python numbers and lists."""
    tolist = getattr(value, "tolist", None)
    if callable(tolist):
        return tolist()
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _display(name: str, value: Any, text: str) -> None:
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None  # type: ignore[attr-defined]
    if shell is None:
        return  # plain Python: nobody collects display outputs
    from IPython.display import display

    summary = text if len(text) <= 200 else text[:199] + "…"
    # text/plain too: JupyterLab shows a "no renderer" warning for an output without one.
    bundle = {MIME: {"name": name, "value": value}, "text/plain": f"recorded {name} = {summary}"}
    display(bundle, raw=True)
