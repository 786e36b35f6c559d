"""The store's light entry points do not import duckdb (the CLI and runners start fast)."""

from __future__ import annotations

import subprocess
import sys

import jupyter_workflows.store as store_package


def test_store_and_journal_do_not_import_duckdb() -> None:
    code = (
        "import sys\n"
        "import jupyter_workflows.store\n"
        "import jupyter_workflows.store.journal\n"
        "from jupyter_workflows.store import ExecutionStore, JournalWriter, default_store_path\n"
        "import jupyter_workflows.execution.owner\n"
        "print('duckdb' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_public_names() -> None:
    assert store_package.__all__ == [
        "ExecutionStore",
        "ExecutionSummary",
        "JournalWriter",
        "LogLine",
        "default_store_path",
        "read_journal",
    ]
    for name in store_package.__all__:
        assert getattr(store_package, name).__name__ == name
