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
    """
    _stand_in("pydantic.plugin._loader", get_plugins=lambda: ())


def skip_httpx_command_line() -> None:
    """Import httpx (http tasks, Slack and webhook alerts) without its command line.

    ``httpx/__init__`` imports ``httpx._main`` for ``httpx.main``, and that imports rich,
    pygments and click's extras: ~35 ms, a third of an http task's start. The ``workflow``
    process never calls it; the stand-in's ``main`` runs the real one if anything does.
    """

    def main(*args: Any, **kwargs: Any) -> Any:
        return _real(_HTTPX_CLI).main(*args, **kwargs)

    if "httpx" not in sys.modules:
        _stand_in(_HTTPX_CLI, main=main)


_HTTPX_CLI = "httpx._main"


def _stand_in(module: str, **attributes: Any) -> None:
    """Have the first import of ``module`` in this process give a module holding only
    ``attributes``. Any other name asked of it is the real module's (imported then, and put
    in its place), so a newer release of the library keeps working. The stand-in is made by
    the import system (a finder, used once), so its package holds it as an attribute too."""
    waiting = (f for f in sys.meta_path if isinstance(f, _StandIn))
    if module in sys.modules or any(f.module == module for f in waiting):
        return
    sys.meta_path.insert(0, _StandIn(module, attributes))


class _StandIn:
    def __init__(self, module: str, attributes: dict[str, Any]) -> None:
        self.module, self.attributes = module, attributes

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> Any:
        if fullname != self.module:
            return None
        import importlib.util

        sys.meta_path.remove(self)  # once: the real module is found the usual way
        return importlib.util.spec_from_loader(fullname, self)  # type: ignore[arg-type]

    def create_module(self, spec: Any) -> None:
        return None  # a plain module

    def exec_module(self, stand_in: Any) -> None:
        module = self.module

        def forward(name: str) -> Any:
            if name.startswith("__"):  # the import system probing (__path__, ...): not ours
                raise AttributeError(name)
            return getattr(_real(module), name)

        vars(stand_in).update(self.attributes, __getattr__=forward)


def _real(module: str) -> Any:
    import importlib

    if isinstance(getattr(sys.modules.get(module), "__loader__", None), _StandIn):
        del sys.modules[module]
    return importlib.import_module(module)


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
