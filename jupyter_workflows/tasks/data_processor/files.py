"""Files for ``data_processor``: find inputs, read them by format, place outputs in the project.

Every problem with one file raises ``ItemError`` with a message that makes sense after the
file's name ("data/a.json: invalid JSON at line 3 column 5: ..."), so one bad file fails only
its own item.
"""

from __future__ import annotations

import contextlib
import csv
import glob
import io
import json
import os
from pathlib import Path
from typing import Any

# How much of an unusable processor output an error message quotes.
SNIPPET = 60


class ItemError(Exception):
    """A problem with one input file; the message is the cause shown after its name."""


def find_inputs(pattern: str, root: Path) -> list[Path]:
    """Files matching ``pattern`` (relative to ``root`` unless absolute), sorted; ``**`` recurses.

    Directories that match are left out: only files are processed.
    """
    if os.path.isabs(pattern):
        matches = [Path(p) for p in glob.glob(pattern, recursive=True)]
    else:
        # root_dir rather than root / pattern: glob characters in the root's own path stay literal.
        matches = [root / p for p in glob.glob(pattern, root_dir=root, recursive=True)]
    return sorted(path for path in matches if path.is_file())


def read_input(path: Path) -> Any:
    """``.json`` parsed, ``.csv`` as a list of row objects (header = keys), anything else text."""
    try:
        # utf-8-sig: spreadsheet exports often start with a byte-order mark.
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ItemError(f"not UTF-8 text (invalid byte at offset {exc.start})") from None
    except OSError as exc:
        raise ItemError(f"cannot read it: {exc.strerror or exc}") from None
    suffix = path.suffix.lower()
    if suffix == ".json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise ItemError(
                f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
            ) from None
    if suffix == ".csv":
        try:
            return list(csv.DictReader(io.StringIO(text, newline="")))
        except csv.Error as exc:
            raise ItemError(f"invalid CSV: {exc}") from None
    return text


def shown(path: Path, root: Path) -> str:
    """How a path appears in results and messages: relative to the project when inside it."""
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        try:
            return path.relative_to(root.resolve()).as_posix()
        except ValueError:
            return str(path)


def parse_output(text: str) -> Any:
    """The processor's stdout as one JSON value."""
    stripped = text.strip()
    if not stripped:
        raise ItemError("processor printed nothing (expected JSON on stdout)")
    try:
        return json.loads(stripped)
    except ValueError:
        snippet = stripped[:SNIPPET] + ("..." if len(stripped) > SNIPPET else "")
        raise ItemError(
            f"processor printed non-JSON output: {snippet!r} (stdout must be one JSON value; "
            "write log messages to stderr)"
        ) from None


def write_output(path: Path, value: Any, root: Path) -> None:
    """Pretty JSON at ``path``, replaced whole so that a cancelled run leaves no half file."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary.write_text(
            json.dumps(value, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
        )
        os.replace(temporary, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            temporary.unlink(missing_ok=True)
        raise ItemError(f"cannot write {shown(path, root)}: {exc.strerror or exc}") from None
