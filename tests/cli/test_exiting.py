"""How a ``workflow`` process ends (cli/exiting.py): at once when its command is done, after
its atexit handlers and with its output flushed; the normal way while another thread works."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from jupyter_workflows.cli import exiting
from tests.conftest import cli, write_workflow

# A process that runs the real command as its console script does. Its atexit handler (as a
# plugin may register) leaves a mark, and makes an object whose finaliser leaves another only
# if the interpreter tears itself down after the handlers (the handler is registered before
# the command's own, so it runs after them: after the collector's freeze, too).
_PROCESS = textwrap.dedent(
    """
    import atexit, builtins, os, pathlib, sys, threading, time

    marks = pathlib.Path(sys.argv[1])

    class Teardown:
        def __init__(self, path):
            self.path, self.open, self.write = str(path), os.open, os.write

        def __del__(self):
            self.write(self.open(self.path, os.O_WRONLY | os.O_CREAT, 0o644), b"ran")

    def at_exit():
        (marks / "atexit").write_text("ran")
        builtins.teardown_mark = Teardown(marks / "teardown")

    atexit.register(at_exit)
    if sys.argv[2] == "busy-thread":
        def late_work():
            time.sleep(0.5)
            (marks / "thread").write_text("done")
        threading.Thread(target=late_work).start()

    from jupyter_workflows.cli import main
    sys.argv = ["workflow", *sys.argv[3:]]
    main()
    """
)


def _workflow_process(root: Path, marks: Path, mode: str, *args: str):
    marks.mkdir()
    return subprocess.run(
        [sys.executable, "-c", _PROCESS, str(marks), mode, *args],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def ok_file(tmp_path: Path) -> Path:
    return write_workflow(
        tmp_path, {"name": "ok", "tasks": [{"id": "a", "type": "shell", "command": "true"}]}
    )


def test_a_finished_command_skips_the_teardown_but_not_the_atexit_handlers(
    tmp_path: Path, ok_file: Path
) -> None:
    marks = tmp_path / "marks"
    done = _workflow_process(tmp_path, marks, "alone", "validate", ok_file.name)
    assert done.returncode == 0, done.stderr
    assert f"{ok_file.name}: valid" in done.stdout
    assert (marks / "atexit").read_text() == "ran"
    assert not (marks / "teardown").exists()


def test_a_failed_command_keeps_its_exit_code_and_message(tmp_path: Path) -> None:
    bad = write_workflow(tmp_path, {"name": "b", "tasks": [{"id": "a"}]}, "bad.json")
    marks = tmp_path / "marks"
    done = _workflow_process(tmp_path, marks, "alone", "validate", bad.name)
    assert done.returncode == 1
    assert "bad.json" in done.stdout + done.stderr
    assert (marks / "atexit").read_text() == "ran"
    assert not (marks / "teardown").exists()


def test_a_thread_still_working_gets_the_normal_exit(tmp_path: Path, ok_file: Path) -> None:
    marks = tmp_path / "marks"
    done = _workflow_process(tmp_path, marks, "busy-thread", "validate", ok_file.name)
    assert done.returncode == 0, done.stderr
    assert (marks / "thread").read_text() == "done"  # waited for, as a normal exit does
    assert (marks / "atexit").read_text() == "ran"
    assert (marks / "teardown").read_text() == "ran"


def test_a_script_that_passes_its_own_arguments_keeps_its_process(
    tmp_path: Path, ok_file: Path
) -> None:
    script = textwrap.dedent(
        """
        import sys
        from jupyter_workflows.cli import main
        try:
            main(["validate", sys.argv[1]])
        except SystemExit as exc:
            print(f"caught {exc.code!r}, still here")
            sys.exit(7)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script, ok_file.name],
        cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 7, done.stderr
    assert f"{ok_file.name}: valid" in done.stdout
    assert "caught 0, still here" in done.stdout


def test_long_output_into_a_pipe_arrives_whole(tmp_path: Path) -> None:
    # The schema is ~40 KiB: several buffers' worth, the last one flushed before leaving.
    done = cli(tmp_path, "schema")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["title"] == "jupyter-workflows workflow definition"


def test_a_run_that_fails_exits_with_the_runs_code(tmp_path: Path) -> None:
    path = write_workflow(
        tmp_path, {"name": "f", "tasks": [{"id": "a", "type": "shell", "command": "exit 3"}]}
    )
    done = cli(tmp_path, "run", path.name)
    assert done.returncode == 1
    history = cli(tmp_path, "history", "--json")
    assert json.loads(history.stdout)[0]["status"] == "failed"


@pytest.mark.parametrize(
    ("code", "status", "printed"),
    [(None, 0, ""), (0, 0, ""), (2, 2, ""), (True, 1, ""), ("no such file", 1, "no such file\n")],
)
def test_status_is_what_sys_exit_gives(capsys, code, status, printed) -> None:
    assert exiting._status(code) == status
    assert capsys.readouterr().err == printed
