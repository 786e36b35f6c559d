"""Running one container for a docker task: create, attach, start, stream, wait, remove.

Blocking functions, for worker threads. The container is created with our labels and network
"none"; the caller removes it afterwards (``remove``) or, on cancel, stops it (``stop_and_remove``).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any

from .client import Cancelled, DockerFailure, LineSplitter, Relay, Streams

STDERR_TAIL = 20


@dataclass
class RunSpec:
    image: str
    command: list[str] | None
    environment: dict[str, str] = field(default_factory=dict)
    binds: list[str] = field(default_factory=list)  # "/abs/host:/container[:mode]"
    working_dir: str | None = None
    labels: dict[str, str] = field(default_factory=dict)


@dataclass
class Ran:
    exit_code: int
    stdout: str
    stderr_tail: list[str]
    oom_killed: bool = False


class _Output:
    """The container's two streams, as lines; stdout kept whole, stderr's last lines."""

    def __init__(self, relay: Relay):
        self.stdout: list[str] = []
        self.stderr_tail: list[str] = []
        self.relay = relay
        self.out = LineSplitter(self._stdout)
        self.err = LineSplitter(self._stderr)

    def _stdout(self, line: str) -> None:
        self.stdout.append(line)
        self.relay.line("stdout", line)

    def _stderr(self, line: str) -> None:
        self.stderr_tail = [*self.stderr_tail[-(STDERR_TAIL - 1) :], line]
        self.relay.line("stderr", line)

    def flush(self) -> None:
        self.out.flush()
        self.err.flush()


def run_container(api: Any, spec: RunSpec, relay: Relay, streams: Streams) -> Ran:
    """Create, start and follow the container until it exits (blocking).

    The container's id is handed to ``streams`` at once, so that whoever cancels the attempt
    finds it; after a normal return or an exception the caller removes it.
    """
    import docker

    container = _create(api, spec, relay, streams)
    try:
        streams.adopt(container)
    except Cancelled:
        remove(api, container)  # cancelled while it was being created: nobody else knows it
        raise
    # Attached before the start, so not a byte of early output is missed.
    stream = api.attach(container, stdout=True, stderr=True, stream=True, logs=True, demux=True)
    streams.add(stream)
    output = _Output(relay)
    try:
        api.start(container)
    except docker.errors.APIError as exc:
        stream.close()
        explanation = _explain(exc)
        raise DockerFailure(
            f"cannot start the container: {explanation}", exit_code=_start_code(explanation)
        ) from None
    for stdout, stderr in stream:
        if stdout:
            output.out.feed(stdout)
        if stderr:
            output.err.feed(stderr)
    output.flush()
    if streams.cancelled:  # the stream was cut: whoever cancelled removes the container
        raise Cancelled
    status = api.wait(container)
    exit_code = int(status.get("StatusCode", -1))
    oom = exit_code == 137 and bool(api.inspect_container(container)["State"].get("OOMKilled"))
    return Ran(exit_code, "\n".join(output.stdout), output.stderr_tail, oom_killed=oom)


def _create(api: Any, spec: RunSpec, relay: Relay, streams: Streams) -> str:
    """Create the container; pull its image first when the engine does not have it."""
    import docker

    host_config = api.create_host_config(binds=spec.binds or None, network_mode="none")
    options = dict(
        image=spec.image,
        command=spec.command,
        environment=spec.environment,
        working_dir=spec.working_dir,
        labels=spec.labels,
        host_config=host_config,
    )
    try:
        return str(api.create_container(**options)["Id"])
    except docker.errors.ImageNotFound:
        pass
    except docker.errors.APIError as exc:
        raise DockerFailure(f"cannot create the container: {_explain(exc)}") from None
    if streams.cancelled:
        raise Cancelled
    pull(api, spec.image, relay)
    try:
        return str(api.create_container(**options)["Id"])
    except docker.errors.APIError as exc:
        raise DockerFailure(f"cannot create the container: {_explain(exc)}") from None


def pull(api: Any, image: str, relay: Relay) -> None:
    """Pull ``image``, streaming its status lines (byte progress left out)."""
    import docker
    from docker.utils import parse_repository_tag

    repository, tag = parse_repository_tag(image)
    relay.line("stdout", f"pulling {image}")
    try:
        for chunk in api.pull(repository, tag=tag or "latest", stream=True, decode=True):
            if "error" in chunk:
                raise DockerFailure(f"cannot pull image '{image}': {str(chunk['error']).strip()}")
            status = chunk.get("status")
            if status and not chunk.get("progressDetail"):
                prefix = f"{chunk['id']}: " if chunk.get("id") else ""
                relay.line("stdout", f"{prefix}{status}")
    except docker.errors.APIError as exc:
        raise DockerFailure(f"cannot pull image '{image}': {_explain(exc)}") from None


def remove(api: Any, container: str) -> str | None:
    """Remove the container (killing it if it runs); the reason when that failed."""
    import docker

    try:
        api.remove_container(container, force=True, v=True)
    except docker.errors.NotFound:
        pass
    except Exception as exc:
        return f"could not remove container {container[:12]}: {exc}"
    return None


def stop_and_remove(api: Any, container: str, grace: float) -> str | None:
    """SIGTERM, ``grace`` seconds to exit, then removal (which SIGKILLs what still runs)."""
    with contextlib.suppress(Exception):  # already exited, or never started
        api.kill(container, signal="SIGTERM")
        if grace > 0:
            # Returns when it exits; a ReadTimeout after ``grace`` means it ignored SIGTERM.
            api.wait(container, timeout=grace)
    return remove(api, container)


def _start_code(explanation: str) -> int:
    """The exit code ``docker run`` gives: 127 no such command, 126 not runnable, 125 other."""
    lowered = explanation.lower()
    if "not found" in lowered or "no such file" in lowered:
        return 127
    if "permission denied" in lowered:
        return 126
    return 125


def _explain(exc: Any) -> str:
    return str(exc.explanation or exc)
