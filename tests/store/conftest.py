"""Fixtures for store tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from jupyter_workflows.store import ExecutionStore


@pytest.fixture
def store(tmp_path: Path) -> ExecutionStore:
    return ExecutionStore(tmp_path / "executions")
