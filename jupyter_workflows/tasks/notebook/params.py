"""Parameter injection, as papermill does it: an "injected-parameters" cell after "parameters".

The cell goes right after the first cell tagged ``parameters`` (or replaces an earlier
``injected-parameters`` cell, or goes first when neither exists), and the values land in the
notebook's ``metadata.papermill.parameters``, so papermill's tools read our notebooks.
Python source is generated here, in papermill's exact format but without importing papermill
(about 250 ms of imports); other languages use papermill's translators.
"""

from __future__ import annotations

import math
from typing import Any

from ...errors import WorkflowError

INJECTED_TAG = "injected-parameters"
PARAMETERS_TAG = "parameters"


def inject_parameters(nb: Any, parameters: dict[str, Any], language: str, kernel: str) -> None:
    """Insert the injected-parameters cell into ``nb`` (in place); nothing when no parameters."""
    if not parameters:
        return
    from nbformat.v4 import new_code_cell

    source = parameter_source(parameters, language, kernel)
    cell = new_code_cell(source=source)
    cell.metadata["tags"] = [INJECTED_TAG]
    if nb.get("nbformat_minor", 0) < 5:
        cell.pop("id", None)  # cell ids are only valid from format 4.5 on
    injected = _first_tagged(nb.cells, INJECTED_TAG)
    if injected >= 0:
        nb.cells[injected] = cell
    else:
        nb.cells.insert(_first_tagged(nb.cells, PARAMETERS_TAG) + 1, cell)
    nb.metadata.setdefault("papermill", {})["parameters"] = parameters


def parameter_source(parameters: dict[str, Any], language: str, kernel: str) -> str:
    """The injected cell's source for ``language``; a WorkflowError when it cannot be made."""
    if language == "python":
        for name in parameters:
            if not name.isidentifier():
                raise WorkflowError(f"parameter name '{name}' is not a valid Python identifier")
        return python_source(parameters)
    try:
        from papermill.exceptions import PapermillException
        from papermill.translators import translate_parameters
    except ImportError:  # pragma: no cover - papermill is a dependency
        raise WorkflowError(f"cannot inject parameters for language '{language}'") from None
    try:
        return str(translate_parameters(kernel, language, parameters, "Parameters"))
    except (PapermillException, NotImplementedError) as exc:
        raise WorkflowError(f"cannot inject parameters for kernel '{kernel}': {exc}") from None


def python_source(parameters: dict[str, Any]) -> str:
    """papermill's PythonTranslator output (without its optional black formatting)."""
    lines = ["# Parameters"]
    lines += [f"{name} = {_python_value(value)}" for name, value in parameters.items()]
    return "\n".join(lines) + "\n"


def _python_value(value: Any) -> str:
    if value is None or isinstance(value, (bool, int)):
        return str(value)
    if isinstance(value, float):
        if math.isfinite(value):
            return str(value)
        if math.isnan(value):
            return "float('nan')"
        return "float('-inf')" if value < 0 else "float('inf')"
    if isinstance(value, dict):
        items = ", ".join(f"{_python_str(k)}: {_python_value(v)}" for k, v in value.items())
        return "{" + items + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_python_value(v) for v in value) + "]"
    return _python_str(value)


def _python_str(value: Any) -> str:
    # papermill's escaping: unicode_escape (which also doubles backslashes), then quotes.
    if isinstance(value, str):
        value = value.encode("unicode_escape").decode("utf-8").replace('"', r"\"")
    return f'"{value}"'


def _first_tagged(cells: list[Any], tag: str) -> int:
    for index, cell in enumerate(cells):
        if tag in cell.get("metadata", {}).get("tags", ()):
            return index
    return -1
