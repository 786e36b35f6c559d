"""A real Dask cluster for tests: a ``dask scheduler`` and ``dask worker`` processes on 127.0.0.1.

The processes are the tests' own (started here, stopped at the end of the module), each with a
name so a test can tell them apart; one worker declares the resource ``GPU=1``. Workers inherit
the environment, so they import this checkout's jupyter_workflows, as workers of a real cluster
share the project's installation.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

DASK = Path(sys.executable).with_name("dask")


@dataclass
class Cluster:
    address: str
    folder: Path
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def workers(self) -> dict[str, dict[str, object]]:
        """address -> {name, pid (of the process running tasks), resources}."""
        from distributed import Client

        with Client(self.address, timeout=30) as client:
            identity = client.scheduler_info(n_workers=-1)["workers"]
            pids = client.run(os.getpid)
        return {
            address: {
                "name": info.get("name"),
                "pid": pids.get(address),
                "resources": info.get("resources") or {},
            }
            for address, info in identity.items()
        }

    def wait_for_workers(self, count: int, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if len(self.workers()) >= count:
                    return
            except OSError:
                pass
            time.sleep(0.3)
        raise TimeoutError(f"the test cluster did not get {count} workers in {timeout} s")


def _start(args: list[str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [str(DASK), *args], stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


@contextlib.contextmanager
def running_cluster(workers: list[list[str]]) -> Iterator[Cluster]:
    """A scheduler and one ``dask worker`` per entry of ``workers`` (its extra arguments)."""
    if not DASK.exists():
        pytest.skip("dask is not installed (pip install 'jupyter-workflows[dask]')")
    folder = Path(tempfile.mkdtemp(prefix="jupyter-workflows-dask-"))
    scheduler_file = folder / "scheduler.json"
    cluster = Cluster(address="", folder=folder)
    common = ["--scheduler-file", str(scheduler_file), "--no-dashboard"]
    cluster.processes.append(
        _start(["scheduler", "--host", "127.0.0.1", "--port", "0", *common], folder / "s.log")
    )
    try:
        deadline = time.monotonic() + 60
        while not scheduler_file.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(0.2)  # written in one go, but give it a moment
        cluster.address = json.loads(scheduler_file.read_text())["address"]
        base = ["worker", "--nthreads", "1", "--host", "127.0.0.1", *common]
        for number, extra in enumerate(workers):
            log = folder / f"w{number}.log"
            cluster.processes.append(_start([*base, *extra], log))
        cluster.wait_for_workers(len(workers))
        yield cluster
    finally:
        for process in reversed(cluster.processes):
            try:
                os.killpg(process.pid, signal.SIGTERM)
            except ProcessLookupError:
                continue
        for process in cluster.processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module", name="dask_cluster")
def dask_cluster_fixture() -> Iterator[Cluster]:
    """A scheduler and two single-threaded workers: ``cpu`` and ``gpu`` (resources GPU=1)."""
    with running_cluster([["--name", "cpu"], ["--name", "gpu", "--resources", "GPU=1"]]) as c:
        yield c
