"""A private Docker engine for tests: start ``dockerd`` in a temp dir, hand out its DOCKER_HOST.

The engine never gets a bridge network or NAT rules (``--bridge=none``, no iptables), listens
only on a unix socket in its own folder and keeps its images in its own data-root, so it touches
nothing of the machine. Images are built ``FROM scratch`` with a static busybox copied in
(Debian's ``busybox-static``): nothing is ever pulled from a registry.

Needs: root, Debian's ``docker.io`` (dockerd, containerd, runc) and ``busybox-static``. Where
they are missing the tests skip with the reason, except under ``CI=true``, where they fail.
``JUPYTER_WORKFLOWS_TEST_DOCKER_HOST`` points the tests at an engine started elsewhere instead.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

BUSYBOX = Path("/bin/busybox")
OVERRIDE = "JUPYTER_WORKFLOWS_TEST_DOCKER_HOST"
LABEL = "jupyter-workflows.test"  # on the test images, so a leftover is recognisable
# FROM scratch has no shell yet: the install runs busybox itself (exec form).
BUSYBOX_DOCKERFILE = (
    "FROM scratch\n"
    "COPY busybox /bin/busybox\n"
    'RUN ["/bin/busybox", "--install", "-s", "/bin"]\n'
    'CMD ["sh"]\n'
)


class EngineUnavailable(Exception):
    """dockerd is missing or did not come up; the message says why."""


@dataclass
class Engine:
    host: str  # unix://DIR/docker.sock
    process: subprocess.Popen[bytes] | None  # None for an engine we did not start
    folder: Path | None
    started_in: float  # seconds from spawn to the first answered ping


def dockerd_argv(folder: Path, storage_driver: str | None = None) -> list[str]:
    """The exact dockerd command line the tests (and .ci/run, if it starts one) use."""
    argv = [
        "dockerd",
        "--bridge=none",
        "--iptables=false",
        "--ip6tables=false",
        "--ip-masq=false",
        f"--data-root={folder / 'root'}",
        f"--exec-root={folder / 'exec'}",
        f"--pidfile={folder / 'docker.pid'}",
        f"--config-file={folder / 'daemon.json'}",  # ignore /etc/docker/daemon.json
        f"--host=unix://{folder / 'docker.sock'}",
        "--shutdown-timeout=1",  # containers still running at teardown: SIGKILL after 1 s
        "--log-level=warn",
    ]
    if storage_driver:
        argv.append(f"--storage-driver={storage_driver}")
    return argv


def _client(host: str, timeout: float = 60.0) -> Any:
    import docker

    return docker.DockerClient(base_url=host, version="auto", timeout=timeout)


def ping(host: str, timeout: float = 2.0) -> bool:
    try:
        with contextlib.closing(_client(host, timeout)) as client:
            return bool(client.ping())
    except Exception:
        return False


def _wait_ready(process: subprocess.Popen[bytes], host: str, log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    socket_path = host.removeprefix("unix://")
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise EngineUnavailable(f"dockerd exited with {process.returncode}: {_tail(log)}")
        if os.path.exists(socket_path) and ping(host):
            return
        time.sleep(0.05)
    raise EngineUnavailable(f"dockerd did not answer within {timeout:.0f} s: {_tail(log)}")


def _tail(log: Path, lines: int = 5) -> str:
    try:
        text = log.read_text(errors="replace").strip().splitlines()
    except OSError:
        return "(no log)"
    return " | ".join(text[-lines:]) or "(empty log)"


def start(timeout: float = 30.0) -> Engine:
    """Start a private dockerd; overlay2 first, vfs when overlay cannot mount here."""
    if shutil.which("dockerd") is None:
        raise EngineUnavailable("no dockerd on PATH (apt-get install -y docker.io)")
    if not BUSYBOX.is_file():
        raise EngineUnavailable(f"no {BUSYBOX} (apt-get install -y busybox-static)")
    errors = []
    for driver in (None, "vfs"):
        # A short path: a unix socket path must stay under 108 bytes.
        folder = Path(tempfile.mkdtemp(prefix="jwd-", dir="/tmp"))
        (folder / "daemon.json").write_text("{}")
        try:
            return _spawn(folder, driver, timeout)
        except EngineUnavailable as exc:
            errors.append(f"{driver or 'default storage driver'}: {exc}")
            shutil.rmtree(folder, ignore_errors=True)
    raise EngineUnavailable("; ".join(errors))


def _spawn(folder: Path, driver: str | None, timeout: float) -> Engine:
    host = f"unix://{folder / 'docker.sock'}"
    log = folder / "dockerd.log"
    began = time.monotonic()
    with open(log, "wb") as out:
        process = subprocess.Popen(
            dockerd_argv(folder, driver),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # a Ctrl-C of pytest reaches us, not dockerd
        )
    try:
        _wait_ready(process, host, log, timeout)
    except BaseException:
        _terminate(process, 5.0, folder)
        raise
    return Engine(host=host, process=process, folder=folder, started_in=time.monotonic() - began)


def stop(engine: Engine, grace: float = 15.0) -> None:
    """SIGTERM dockerd, wait, SIGKILL its group if it hangs; then remove its folder."""
    if engine.process is None:
        return
    assert engine.folder is not None
    _terminate(engine.process, grace, engine.folder)
    _unmount_below(engine.folder)
    shutil.rmtree(engine.folder, ignore_errors=True)


def _terminate(process: subprocess.Popen[bytes], grace: float, folder: Path) -> None:
    """SIGTERM dockerd (it stops its containers and its containerd); SIGKILL both if it hangs."""
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(grace)
        return
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    # dockerd starts containerd in a session of its own: end it by the pid it wrote.
    with contextlib.suppress(OSError, ValueError):
        pid = int((folder / "exec" / "containerd" / "containerd.pid").read_text())
        os.kill(pid, signal.SIGKILL)


def _unmount_below(folder: Path) -> None:
    """A dockerd killed hard can leave overlay or shm mounts in its data-root."""
    prefix = str(folder) + "/"
    try:
        mounts = Path("/proc/self/mounts").read_text().splitlines()
    except OSError:
        return
    targets = [line.split()[1] for line in mounts if line.split()[1].startswith(prefix)]
    for target in sorted(targets, key=len, reverse=True):
        subprocess.run(["umount", "-l", target], capture_output=True, check=False)


@contextlib.contextmanager
def engine() -> Iterator[Engine]:
    """The engine named by $JUPYTER_WORKFLOWS_TEST_DOCKER_HOST, else a private dockerd."""
    override = os.environ.get(OVERRIDE)
    if override:
        if not ping(override, timeout=10.0):
            raise EngineUnavailable(f"{OVERRIDE}={override} does not answer")
        yield Engine(host=override, process=None, folder=None, started_in=0.0)
        return
    started = start()
    try:
        yield started
    finally:
        stop(started)


def unavailable(reason: str) -> None:
    """Skip the test, but fail it under CI=true: CI must run the Docker tests."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"Docker engine unavailable in CI: {reason}", pytrace=False)
    pytest.skip(f"Docker engine unavailable: {reason}")


class _Shared:
    """One engine per test process, however many fixtures (in how many modules) ask for it."""

    def __init__(self) -> None:
        self.stack: contextlib.ExitStack | None = None
        self.engine: Engine | None = None
        self.failure: str | None = None  # a failed start is not tried again
        self.holders = 0
        self.images: dict[str, str] = {}


_shared = _Shared()


@contextlib.contextmanager
def engine_for_tests() -> Iterator[Engine]:
    """For a fixture: the shared engine, stopped when its last holder lets go.

    No engine: the test skips (fails under CI=true) with the reason.
    """
    if _shared.engine is None:
        if _shared.failure is None:
            stack = contextlib.ExitStack()
            try:
                _shared.engine = stack.enter_context(engine())
                _shared.stack = stack
            except EngineUnavailable as exc:
                _shared.failure = str(exc)
        if _shared.failure is not None:
            unavailable(_shared.failure)
    assert _shared.engine is not None
    _shared.holders += 1
    try:
        yield _shared.engine
    finally:
        _shared.holders -= 1
        if _shared.holders == 0 and _shared.stack is not None:
            stack, _shared.stack, _shared.engine = _shared.stack, None, None
            _shared.images.clear()
            stack.close()


def busybox_image(host: str) -> str:
    """The tag of a local busybox image on ``host``, built once (FROM scratch, never pulled)."""
    if host not in _shared.images:
        tag = "jw-test-busybox:1"
        with tempfile.TemporaryDirectory(prefix="jwb-") as workdir:
            build_busybox_image(host, tag, Path(workdir))
        _shared.images[host] = tag
    return _shared.images[host]


def build_busybox_image(host: str, tag: str, workdir: Path) -> str:
    """Build ``tag`` FROM scratch with the static busybox; return the image id."""
    context = workdir / "busybox-image"
    context.mkdir(parents=True, exist_ok=True)
    shutil.copy2(BUSYBOX, context / "busybox")
    (context / "Dockerfile").write_text(BUSYBOX_DOCKERFILE)
    with contextlib.closing(_client(host)) as client:
        image, _log = client.images.build(
            path=str(context), tag=tag, rm=True, network_mode="none", labels={LABEL: "1"}
        )
        return str(image.id)


def containers_labelled(host: str, label: str) -> list[str]:
    """Ids of every container (running or not) that carries ``label`` (``key`` or ``key=value``)."""
    with contextlib.closing(_client(host)) as client:
        found = client.api.containers(all=True, filters={"label": label})
        return [str(c["Id"]) for c in found]


def engine_info(host: str) -> dict[str, str]:
    with contextlib.closing(_client(host)) as client:
        info = client.info()
    return {"driver": str(info.get("Driver")), "version": str(info.get("ServerVersion"))}


if __name__ == "__main__":  # manual check: python -m tests.dockerd
    with engine() as running:
        print(json.dumps({"host": running.host, "started_in": round(running.started_in, 3)}))
        print(engine_info(running.host))
