"""``workflow secrets``: which secrets there are and where each comes from, never their values.

Only click is imported here; the sources load inside the commands.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from .common import EXIT_FAILED, friendly_errors

if TYPE_CHECKING:
    from ..secrets import Found


@click.group("secrets")
def secrets() -> None:
    """Secrets for ${secret.NAME}: list them, check what a workflow needs."""


@secrets.command("list")
@click.argument("files", nargs=-1, type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print names and sources as JSON.")
@click.pass_obj
@friendly_errors
def list_(root: Path, files: tuple[Path, ...], as_json: bool) -> None:
    """Names of the secrets found and where each resolves from (never a value).

    Without FILES: the WORKFLOW_SECRET_* variables and the secrets file's entries (a command
    or the keyring answers only for a name it is asked about). With FILES: also each secret
    those workflows need, looked up in every source."""
    from ..secrets import SecretSources, check_secrets

    rows: dict[str, Found | None] = {f.name: f for f in SecretSources(root).listable()}
    for file in files:
        resolved, _, _ = check_secrets(_load(root, file), root)
        rows.update(resolved)
    if as_json:
        click.echo(
            json.dumps([_row(name, found) for name, found in sorted(rows.items())], indent=2)
        )
        return
    if not rows:
        click.echo(
            "no secrets found (set WORKFLOW_SECRET_<NAME>, or see `workflow secrets --help`)"
        )
    for name, hit in sorted(rows.items()):
        click.echo(f"{name}\t{_source(hit)}")


@secrets.command("check")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.pass_obj
@friendly_errors
def check(root: Path, files: tuple[Path, ...], as_json: bool) -> None:
    """Which secrets each workflow needs, where each resolves from, which are missing.

    Exit code 0 when every one is found, 1 when one is missing, 2 when a file or a source
    cannot be used (a secrets file others can read)."""
    from ..execution.masking import MIN_LENGTH
    from ..secrets import check_secrets

    report: list[dict[str, Any]] = []
    missing = 0
    for file in files:
        found, needed, sources = check_secrets(_load(root, file), root)
        for name, hit in found.items():
            row = {"file": str(file), **_row(name, hit), "needed_by": needed[name]}
            if hit is None:
                missing += 1
                row["looked_in"] = sources.looked_in(name)
            elif len(hit.value) < MIN_LENGTH:
                row["warning"] = f"shorter than {MIN_LENGTH} characters: it will not be masked"
            report.append(row)
    if as_json:
        click.echo(json.dumps(report, indent=2))
    else:
        _print_check(files, report)
    if missing:
        sys.exit(EXIT_FAILED)


def _print_check(files: tuple[Path, ...], report: list[dict[str, Any]]) -> None:
    for file in files:
        rows = [row for row in report if row["file"] == str(file)]
        if not rows:
            click.echo(f"{file}: needs no secrets")
            continue
        lacking = [row for row in rows if row["source"] is None]
        state = f"{len(lacking)} missing" if lacking else "all found"
        click.echo(f"{file}: needs {len(rows)} secret(s), {state}")
        for row in rows:
            needed = "; ".join(row["needed_by"])
            if row["source"] is None:
                click.echo(f"  {row['name']}: MISSING (needed by {needed})")
                click.echo(f"    looked in: {', '.join(row['looked_in'])}")
            else:
                click.echo(f"  {row['name']}: {row['where']} (needed by {needed})")
                if "warning" in row:
                    click.echo(f"    warning: {row['warning']}")


def _load(root: Path, file: Path) -> Any:
    from ..definition.loader import load_workflow
    from ..project import file_argument

    return load_workflow(file_argument(file, root))


def _row(name: str, found: Found | None) -> dict[str, Any]:
    if found is None:
        return {"name": name, "source": None, "where": None}
    return {"name": name, "source": found.source, "where": found.where}


def _source(found: Found | None) -> str:
    return "MISSING" if found is None else f"{found.source}: {found.where}"
