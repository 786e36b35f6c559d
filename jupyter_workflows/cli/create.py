"""``workflow create`` and ``workflow generate``: write a new workflow file from a template.

Both check what they write with the same validation as ``workflow validate`` before writing,
never overwrite an existing file without ``--force``, and print the path written (nothing else
on stdout, so scripts can use it). Bad input (unknown template or type, a name that cannot be a
file name, an existing file, an unknown file extension) exits 2.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click

from .common import fail as _fail
from .common import friendly_errors
from .workflow_templates import GENERATE_TYPES, TEMPLATES

_OUTPUT_HELP = "Where to write it (.json, .yaml or .yml); default workflows/definitions/NAME.json."


@click.command()
@click.option("--name", required=True, help="The workflow's name (also its file name).")
@click.option("--template", required=True, metavar="|".join(TEMPLATES), help="What to start from.")
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), help=_OUTPUT_HELP)
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
@click.pass_obj
@friendly_errors
def create(root: Path, name: str, template: str, output: Path | None, force: bool) -> None:
    """Create a workflow from a template: web-app, ci-cd, scheduled or custom."""
    _write_new(root, template, name, output, force, TEMPLATES, "template")


@click.command()
@click.option("--type", "kind", required=True, metavar="|".join(GENERATE_TYPES),
              help="What kind of workflow.")  # fmt: skip
@click.option("--name", default=None, help="The workflow's name (default: the type).")
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), help=_OUTPUT_HELP)
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
@click.pass_obj
@friendly_errors
def generate(root: Path, kind: str, name: str | None, output: Path | None, force: bool) -> None:
    """Generate a workflow of a type: the create templates, plus file-watch and webhook."""
    _write_new(root, kind, name or kind, output, force, GENERATE_TYPES, "type")


def _write_new(
    root: Path,
    kind: str,
    name: str,
    output: Path | None,
    force: bool,
    kinds: dict[str, Any],
    label: str,
) -> None:
    from ..definition.loader import validate_text
    from ..errors import ValidationError
    from .workflow_templates import build, check_name, render

    if kind not in kinds:
        _fail(f"unknown {label} '{kind}'; choose one of: {', '.join(kinds)}")
    problem = check_name(name)
    if problem:
        _fail(problem)
    path = output if output is not None else root / "workflows" / "definitions" / f"{name}.json"
    fmt = {".json": "json", ".yaml": "yaml", ".yml": "yaml"}.get(path.suffix.lower())
    if fmt is None:
        _fail(f"cannot write {path}: the file name must end in .json, .yaml or .yml")
    text = render(build(kind, name, types=kinds), path)
    report = validate_text(text, source=str(path), fmt=fmt)
    if not report.ok:  # a template we ship is broken: say so rather than write it
        raise ValidationError(report.problems)
    if path.is_dir():
        _fail(f"cannot write {path}: it is a directory")
    if path.exists() and not force:
        _fail(f"{_shown(path)} already exists; use --force to overwrite it")
    path.parent.mkdir(parents=True, exist_ok=True)
    _write(path, text, exclusive=not force)
    click.echo(_shown(path))


def _write(path: Path, text: str, *, exclusive: bool) -> None:
    """Write ``text``; ``exclusive`` refuses a file that appeared since the check (a race)."""
    if exclusive:
        try:
            with path.open("x", encoding="utf-8") as handle:
                handle.write(text)
        except FileExistsError:
            _fail(f"{_shown(path)} already exists; use --force to overwrite it")
        return
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temp.write_text(text, encoding="utf-8")
    os.replace(temp, path)  # never a half-written definition, even when overwriting


def _shown(path: Path) -> str:
    """The path relative to the current directory when it is below it, else absolute."""
    absolute = path.resolve()
    try:
        return str(absolute.relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(absolute)
