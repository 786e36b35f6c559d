"""The fields of a ``database`` task: apart from the type (``__init__.py``), so that running one
imports no pydantic (``tasks.base.ModelAt``)."""

from __future__ import annotations

from typing import Any, Literal, Union

from pydantic import Field

from ...definition import field_checks
from ...definition.model import Strict, TaskBase, model_rule


class DatabaseConfig(Strict):
    connection: str = Field(description="sqlite:///path, duckdb:///path or postgresql://...")
    operation: Literal["query", "migration", "transaction"] | None = Field(
        None,
        description="Default: migration with migrations_path, transaction with queries, else "
        "query (the original format leaves it out for migrations).",
    )
    query: str | None = None
    queries: list[str] = Field(default_factory=list)
    params: Union[list[Any], dict[str, Any], None] = None
    migrations_path: str | None = None
    rollback_on_failure: bool = True

    _operation_needs = model_rule(field_checks.database_operation)


class DatabaseTask(TaskBase):
    type: Literal["database"]
    config: DatabaseConfig
