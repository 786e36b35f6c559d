"""The ``workflow`` process's garbage collector (cli/collector.py): paused while a command
starts, running again when its work begins, and given back as it was to a process that
embeds the command."""

from __future__ import annotations

import gc
import json
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from jupyter_workflows.cli import collector, main
from jupyter_workflows.cli.common import friendly_errors


@pytest.fixture(autouse=True)
def collector_on():
    gc.enable()
    yield
    gc.enable()


def test_pause_and_resume_give_back_the_state_found(monkeypatch) -> None:
    monkeypatch.setattr(collector, "_paused", False)
    collector.pause()
    assert not gc.isenabled()
    collector.resume()
    assert gc.isenabled()

    gc.disable()  # switched off by whoever embeds us: left off
    collector.pause()
    collector.resume()
    assert not gc.isenabled()


@pytest.mark.parametrize(
    "args",
    [
        ["validate", "ok.json"],
        ["validate", "bad.json"],
        ["run", "bad.json"],
        ["history", "--status", "nope"],
        ["--help"],
    ],
)
def test_an_embedded_command_leaves_the_collector_on(tmp_path: Path, monkeypatch, args) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "ok.json").write_text(
        json.dumps({"name": "ok", "tasks": [{"id": "a", "type": "shell", "command": "true"}]})
    )
    (tmp_path / "bad.json").write_text('{"name": "b", "tasks": [{"id": "a"}]}')
    CliRunner().invoke(main, args)
    assert gc.isenabled()


def test_every_command_resumes_the_collector_when_its_work_begins() -> None:
    """A command not wrapped by friendly_errors would run with the collector paused to its end
    (a server for days); run, resume and validate resume it themselves (starts_fast)."""
    wrapped = friendly_errors(lambda: None).__code__
    unwrapped, fast = [], []

    def walk(command: click.Command, path: list[str]) -> None:
        if isinstance(command, click.Group):
            context = click.Context(command)
            for name in command.list_commands(context):
                walk(command.get_command(context, name), [*path, name])  # type: ignore[arg-type]
            return
        function = command.callback
        while function is not None and getattr(function, "__code__", None) is not wrapped:
            function = getattr(function, "__wrapped__", None)
        if function is None:
            unwrapped.append(" ".join(path))
        elif getattr(function, "starts_fast", False):
            fast.append(" ".join(path))

    walk(main, [])
    assert unwrapped == []
    assert sorted(fast) == ["resume", "run", "validate"]
