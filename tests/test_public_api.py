"""The public API is exactly what we mean to export, and importing it stays cheap."""

from __future__ import annotations

import subprocess
import sys

import jupyter_workflows

EXPECTED = {
    "__version__", "WorkflowOrchestrator", "ExecutionStore", "Workflow", "json_schema",
    "load_workflow", "validate_file", "validate_text", "ValidationReport", "Execution",
    "TaskRecord", "Attempt", "State", "WorkflowError", "DefinitionError", "ValidationError",
    "ExpressionError", "TaskTypeNotImplemented", "TaskFailed", "StoreError", "ExecutionNotFound",
    "AmbiguousExecutionId", "Problem", "WorkflowMonitor", "history", "sql", "record",
    "StoreUnavailable", "StoreWriteFailed", "ExecutionNotRunning", "WorkflowFailed",
    "TaskFailure", "ResumeRefused", "SecretError",
}  # fmt: skip


def test_all_is_the_intended_api():
    assert set(jupyter_workflows.__all__) == EXPECTED


def test_lazy_table_matches_all():
    assert set(jupyter_workflows._EXPORTS) | {"__version__"} == set(jupyter_workflows.__all__)


def test_every_exported_name_resolves():
    for name in jupyter_workflows.__all__:
        assert getattr(jupyter_workflows, name) is not None, name


def test_errors_share_one_root():
    for name in ("DefinitionError", "ValidationError", "ExpressionError", "TaskFailed",
                 "StoreError", "ExecutionNotFound", "AmbiguousExecutionId", "StoreUnavailable",
                 "StoreWriteFailed", "ExecutionNotRunning", "WorkflowFailed",
                 "ResumeRefused", "SecretError"):  # fmt: skip
        assert issubclass(getattr(jupyter_workflows, name), jupyter_workflows.WorkflowError)


def test_import_is_lazy_and_the_core_never_imports_jupyter():
    code = (
        "import sys, jupyter_workflows;"
        "import jupyter_workflows.engine.orchestrator, jupyter_workflows.definition.loader;"
        "heavy = {'duckdb', 'IPython', 'ipywidgets', 'jupyter_server', 'altair', 'dask', 'rich'};"
        "print(sorted(heavy & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
