"""How the package is layered: checks that read the source, not run it."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import jupyter_workflows


def test_no_sql_outside_store() -> None:
    """Only ``store/`` talks SQL to the index: everyone else calls the store's named reads.

    ``tasks/database/`` is exempt: the database task type runs its user's SQL on the user's own
    database. Flagged elsewhere: a string literal that reads as SQL (a query, a WHERE fragment,
    a ``?`` placeholder comparison, an index table after FROM/JOIN/INTO), and a call that sends
    SQL (``.query``/``.query_arrow``/``.sql``/``.execute`` on a store, view or connection,
    ``sql``/``sql_table``, ``duckdb.connect``). Strings that are statements on their own
    (docstrings) are prose and never flagged; SQL keywords count in upper case only, as our SQL
    writes them, so an error message saying "no runs from executions" is no query.
    """
    package = Path(jupyter_workflows.__file__).parent
    exempt = (package / "store", package / "tasks" / "database")
    tables = r"(executions|task_runs|attempts|logs|journals|store_meta|schema_migrations)"
    sql_text = re.compile(
        r"\bSELECT\s|\bINSERT\s+INTO\b|\bDELETE\s+FROM\b|\bUPDATE\s+\w+\s+SET\b|\bWHERE\s"
        rf"|\b(FROM|JOIN|INTO)\s+{tables}\b|\btask_runs\b|[=<>]\s*\?|\bto_timestamp\("
    )
    senders = {"query", "query_arrow", "sql", "execute", "executemany"}
    connection_like = re.compile(r"(^|[._])(con|conn|connection|cursor|store|view|index)$")

    def prose(tree: ast.AST) -> set[int]:
        """ids of string constants that are whole statements (docstrings and the like)."""
        return {
            id(node.value)
            for node in ast.walk(tree)
            if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
        }

    def literal_text(node: ast.AST) -> str | None:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return node.value
        if isinstance(node, ast.JoinedStr):  # f-string: its literal parts, holes as {}
            parts = [str(v.value) if isinstance(v, ast.Constant) else "{}" for v in node.values]
            return "".join(parts)
        return None

    def sends_sql(call: ast.Call) -> bool:
        func = call.func
        if isinstance(func, ast.Name):
            return func.id in {"sql", "sql_table"}
        if not isinstance(func, ast.Attribute):
            return False
        receiver = ast.unparse(func.value)
        if func.attr == "connect":
            return receiver == "duckdb"
        if func.attr in {"sql", "sql_table"} and receiver in {"jupyter_workflows", "jw"}:
            return True
        return func.attr in senders and bool(connection_like.search(receiver))

    found: list[tuple[str, int, str]] = []
    for path in sorted(package.rglob("*.py")):
        if any(path.is_relative_to(folder) for folder in exempt):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        skip = prose(tree)
        in_fstring = {
            id(part)
            for node in ast.walk(tree)
            if isinstance(node, ast.JoinedStr)
            for part in node.values
        }
        where = path.relative_to(package.parent).as_posix()
        for node in ast.walk(tree):
            if id(node) in skip or id(node) in in_fstring:
                continue  # f-string parts are read whole, with their JoinedStr
            text = literal_text(node)
            if text is not None and sql_text.search(text):
                what = f"SQL text {text.strip()[:60]!r}"
            elif isinstance(node, ast.Call) and sends_sql(node):
                what = f"sends SQL: {ast.unparse(node.func)}(...)"
            else:
                continue
            found.append((where, getattr(node, "lineno", 0), what))
    lines = [f"{where}:{line}: {what}" for where, line, what in sorted(found)]
    assert not lines, "SQL outside store/ (make it a store method):\n" + "\n".join(lines)
