"""The engine: DAG scheduling, attempts, and the sync facade."""

from __future__ import annotations

from .orchestrator import WorkflowOrchestrator

__all__ = ["WorkflowOrchestrator"]
