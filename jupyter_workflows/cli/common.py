"""What every ``workflow`` command shares: exit codes, one-line errors, start-up tweaks."""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

import click

from . import collector

F = TypeVar("F", bound=Callable[..., Any])

EXIT_FAILED = 1
EXIT_USAGE = 2  # bad input, and a store that cannot be used as it is: nothing ran
EXIT_STORE = 3  # a write to the store failed mid-run (disk full): the run was stopped
EXIT_INTERRUPTED = 130


def skip_pydantic_plugin_lookup() -> None:
    """Tell pydantic there are no plugins, without the lookup that costs ~20 ms per start.

    Pydantic asks ``pydantic.plugin._loader.get_plugins()`` each time it builds a validator;
    that module imports importlib.metadata and scans the entry points of every installed
    package. The ``workflow`` process runs no user code (tasks are subprocesses) and uses no
    plugins, so a stand-in answering "none" takes the module's place in this process only.
    Any other name is forwarded to the real module, so a newer pydantic keeps working.
    """
    if _LOADER in sys.modules:
        return
    import importlib
    import types

    stand_in = types.ModuleType(_LOADER)
    stand_in.get_plugins = lambda: ()  # type: ignore[attr-defined]

    def forward(name: str) -> Any:
        if name.startswith("__"):  # the import system probing (__path__, ...): not ours
            raise AttributeError(name)
        del sys.modules[_LOADER]
        return getattr(importlib.import_module(_LOADER), name)

    stand_in.__getattr__ = forward  # type: ignore[method-assign]
    sys.modules[_LOADER] = stand_in


_LOADER = "pydantic.plugin._loader"


def print_problems(problems: Any, stream: Any = None) -> None:
    for problem in problems:
        click.echo(f"{problem.severity}: {problem}", file=stream or sys.stderr)


def warn(message: str) -> None:
    click.echo(f"warning: {message}", err=True)


def fail(message: str, code: int = EXIT_USAGE) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def starts_fast(func: F) -> F:
    """Mark a command that resumes the paused collector itself, once its start is over (a run,
    right before its tasks) or never (validate: short, and all of it is start)."""
    func.starts_fast = True  # type: ignore[attr-defined]
    return func


def friendly_errors(func: F) -> F:
    """Turn our errors into one clear line and an exit code: no traceback for bad input."""

    resumes_collector_itself = getattr(func, "starts_fast", False)

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not resumes_collector_itself:
            collector.resume()
        from ..errors import (
            ExecutionNotFound,
            StoreError,
            StoreUnavailable,
            StoreWriteFailed,
            ValidationError,
            WorkflowError,
        )

        try:
            return func(*args, **kwargs)
        except ValidationError as exc:
            print_problems(exc.problems)
            sys.exit(EXIT_USAGE)
        except ExecutionNotFound as exc:
            fail(str(exc), EXIT_FAILED)
        except StoreUnavailable as exc:
            fail(str(exc), EXIT_USAGE)
        except StoreWriteFailed as exc:
            fail(str(exc), EXIT_STORE)
        except StoreError as exc:
            fail(str(exc), EXIT_FAILED)
        except WorkflowError as exc:
            fail(str(exc))
        except KeyboardInterrupt:
            sys.exit(EXIT_INTERRUPTED)

    return wrapper  # type: ignore[return-value]


def executor_options(func: F) -> F:
    """``--executor`` and ``--cluster``: where a command's runs execute their tasks."""
    func = click.option(
        "--cluster",
        metavar="ADDRESS",
        default=None,
        help="Run tasks on the Dask cluster whose scheduler is at ADDRESS (tcp://host:8786); "
        "implies --executor dask.",
    )(func)
    func = click.option(
        "--executor",
        type=click.Choice(["local", "dask"]),
        default=None,
        help="Where tasks run: this machine (local, the default) or Dask (a LocalCluster of "
        "worker processes for the run, unless --cluster names one). Default: executor and "
        "cluster in workflows/config.json, else local.",
    )(func)
    return func


def since_option(func: F) -> F:
    """``--since``, read the same way (and wrong the same way) by every command."""
    return click.option(
        "--since",
        default=None,
        callback=_parse_since,
        metavar="AGE|DATE",
        help="Only runs started in the last 7d, 12h, 30m..., or since an ISO 8601 date/time.",
    )(func)


def _parse_since(_ctx: click.Context, _param: click.Parameter, value: str | None) -> Any:
    from ..store.frames import resolve_since

    try:
        return resolve_since(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc).removeprefix("since: ")) from None


# Record fields holding moments; the records keep epoch seconds, JSON readers get ISO 8601.
_MOMENTS = frozenset({"at", "started_at", "ended_at", "last_started_at", "created_at"})
# What tasks produced: user data, passed through as it is.
_USER_DATA = frozenset({"result", "outputs", "params", "payload", "env"})


def json_text(data: Any) -> str:
    """``data`` as the ``--json`` output of every command: moments in ISO 8601 (UTC, with
    the offset), whether a record holds them as epoch seconds or as datetimes."""
    import json

    return json.dumps(_iso_moments(data), default=_jsonable, indent=2)


def _iso_moments(value: Any, key: str | None = None) -> Any:
    if key in _USER_DATA:
        return value
    if isinstance(value, dict):
        return {k: _iso_moments(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_iso_moments(item) for item in value]
    if key in _MOMENTS and isinstance(value, (int, float)) and not isinstance(value, bool):
        from datetime import datetime, timezone

        return datetime.fromtimestamp(value, timezone.utc).isoformat()
    return value


def _jsonable(value: Any) -> Any:
    from datetime import datetime

    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)
