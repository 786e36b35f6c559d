"""The task-type registry: every built-in type declares its model in a light module."""

from __future__ import annotations

import json
import subprocess
import sys

from jupyter_workflows.definition.model import TaskBase
from jupyter_workflows.plugins import TASK_TYPES
from jupyter_workflows.tasks.base import TaskType

HEAVY = [
    "asyncio",
    "httpx",
    "docker",
    "duckdb",
    "psycopg",
    "papermill",
    "nbclient",
    "jupyter_client",
]


def test_every_builtin_type_declares_its_model_under_its_name() -> None:
    for name in TASK_TYPES.builtin:
        declared = TASK_TYPES.load(name)
        assert declared.name == name
        assert issubclass(declared.model, TaskBase)
        assert declared.model.model_fields["type"].annotation.__args__ == (name,)
        assert isinstance(declared(), TaskType)


def test_declaring_every_builtin_type_imports_nothing_heavy() -> None:
    # What `workflow validate` pays for: the models of all types, none of their machinery.
    code = (
        "import json, sys\n"
        "from jupyter_workflows.definition.model import task_models\n"
        "task_models()\n"
        f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []
