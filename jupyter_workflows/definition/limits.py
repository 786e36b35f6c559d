"""How much a workflow file may hold: the bounds that keep loading a hostile file cheap.

Every reader of definitions (files, text, dicts) checks these before anything else looks at
the data, so the model, the graph checks and the engine only ever see a bounded tree: no
alias bombs, no cycles, no nesting that recursion cannot follow, no number that overflows.
A file over a limit is an ordinary located validation error. The README's file-format
section states the same numbers.
"""

from __future__ import annotations

MAX_FILE_BYTES = 2 * 1024 * 1024
"""A definition file (or text) larger than this is refused before it is parsed."""

MAX_NODES = 250_000
"""Values in one document (every mapping, list, key and scalar), YAML aliases counted as often
as they are used, so that an alias bomb is refused after the first 250,000."""

MAX_DEPTH = 64
"""Nesting of mappings and lists, the top level being 1."""

MAX_STRING_CHARS = 100_000
"""One string (a key or a value)."""

MAX_INT = 2**63 - 1
"""Integers lie in [-2**63, 2**63 - 1]; floats must be finite."""

MAX_TASKS = 10_000
"""Tasks in one workflow, nested ones included."""

MAX_CONDITION_DEPTH = 32
"""Nesting of parentheses and '!' in one condition."""

MAX_PROBLEMS = 10_000
"""Problems listed for one file; the rest are counted in one last problem."""
