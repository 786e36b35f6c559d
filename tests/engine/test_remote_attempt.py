"""The worker's side of the dask executor, where it needs no cluster: the folder of the
attempts' ``$WORKFLOW_OUTPUT`` files."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from jupyter_workflows.engine import remote_attempt


@pytest.fixture
def temp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr(remote_attempt, "_workdirs", {})
    yield tmp_path


def test_one_private_folder_per_user_serves_every_attempt(temp: Path) -> None:
    folder = remote_attempt._workdir()
    assert folder == temp / f"jupyter-workflows-outputs-{os.getuid()}"
    assert folder.stat().st_mode & 0o777 == 0o700
    remote_attempt._workdirs.clear()  # another worker process of this user
    assert remote_attempt._workdir() == folder


@pytest.mark.parametrize("planted", ["file", "open folder", "symlink"])
def test_a_name_taken_by_anything_else_gives_a_folder_of_its_own(temp: Path, planted: str) -> None:
    name = temp / f"jupyter-workflows-outputs-{os.getuid()}"
    if planted == "file":
        name.write_text("x")
    elif planted == "open folder":
        name.mkdir()
        name.chmod(0o777)
    else:
        (temp / "elsewhere").mkdir(mode=0o700)
        name.symlink_to(temp / "elsewhere")
    folder = remote_attempt._workdir()
    assert folder.parent == temp and folder.name.startswith("jupyter-workflows-outputs-")
    assert folder.stat().st_mode & 0o777 == 0o700
