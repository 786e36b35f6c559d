"""The package's shape, read from the source: imports point down the layers of
docs/architecture.md, with no cycles, and only store/ talks SQL to the index.

The layer list is read from the ``layers`` block of docs/architecture.md, so the page and this
check cannot drift apart. Every import counts, also those inside functions and under
``TYPE_CHECKING``: a lower layer that needs a higher one's type is still leaning on it.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "jupyter_workflows"
ARCHITECTURE = PACKAGE.parent / "docs" / "architecture.md"
# The root package is the lazy facade (``import jupyter_workflows`` loads nothing): anyone may
# read its version from it, and only that.
ROOT_NAMES_ALLOWED = {"__version__"}


def layers() -> list[list[str]]:
    """The floors, bottom first, each a list of top-level modules and packages."""
    text = ARCHITECTURE.read_text(encoding="utf-8")
    block = re.search(r"```layers\n(.*?)```", text, re.S)
    assert block, f"{ARCHITECTURE} has no ```layers block"
    floors = [line.split()[1:] for line in block.group(1).splitlines() if line.strip()]
    return floors[::-1]  # the page lists the top floor first, as a building is drawn


def modules() -> dict[str, tuple[Path, bool]]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        name = ".".join(parts[:-1] if is_package else parts)
        found[name] = (path, is_package)
    return found


def imports(name: str, path: Path, is_package: bool, known: set[str]) -> Iterator[tuple[str, str]]:
    """(imported module, imported name or "") for every in-package import of a module."""
    base = name.split(".") if is_package else name.split(".")[:-1]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = base[: len(base) - node.level + 1]
                target = ".".join(anchor + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != PACKAGE.name:
                continue
            for alias in node.names:
                submodule = f"{target}.{alias.name}"
                yield (submodule, "") if submodule in known else (target, alias.name)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == PACKAGE.name:
                    yield alias.name, ""


def graph() -> dict[str, set[str]]:
    known = modules()
    edges: dict[str, set[str]] = {name: set() for name in known}
    for name, (path, is_package) in known.items():
        for target, _ in imports(name, path, is_package, set(known)):
            if target in known and target != name:
                edges[name].add(target)
    return edges


def top_level(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_every_module_has_a_floor() -> None:
    placed = [name for floor in layers() for name in floor]
    assert len(placed) == len(set(placed)), "a name is on two floors"
    actual = {top_level(m) for m in modules()} - {"", "__main__"}
    assert sorted(actual - set(placed)) == [], "not placed in docs/architecture.md's layers"
    assert sorted(set(placed) - actual) == [], "placed but no such module or package"


def test_imports_point_down_the_layers() -> None:
    floor_of = {name: i for i, floor in enumerate(layers()) for name in floor}
    known = modules()
    wrong = []
    for name, (path, is_package) in sorted(known.items()):
        here = top_level(name)
        if here in ("", "__main__"):  # the facade and the entry point sit above everything
            continue
        for target, imported in imports(name, path, is_package, set(known)):
            there = top_level(target)
            if there == "":
                if imported not in ROOT_NAMES_ALLOWED:
                    wrong.append(f"{name} imports {imported!r} from the package root")
            elif there != here and floor_of[there] >= floor_of[here]:
                relation = "beside" if floor_of[there] == floor_of[here] else "above"
                wrong.append(f"{name} -> {target} ({there} is {relation} {here})")
    assert wrong == []


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in sorted(edges):
        if start in index:
            continue
        work = [(start, iter(sorted(edges[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_no_import_cycles() -> None:
    assert cycles(graph()) == []


def test_the_checks_catch_what_they_are_for() -> None:
    # A check that cannot fail is no check: feed the cycle finder a cycle, the layer list a
    # name that is not there.
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []
    floors = layers()
    assert floors[0] == ["errors"] and "engine" in [n for f in floors for n in f]


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
    package = PACKAGE
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
