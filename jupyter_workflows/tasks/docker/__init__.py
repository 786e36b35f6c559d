"""``docker``: build an image, run a container, or build and then run it (docker SDK).

- Engine: ``DOCKER_HOST`` from the task's environment, else the SDK's default (the Docker CLI
  context, then ``unix:///var/run/docker.sock``). No engine: one clear error, no traceback.
- Build (``dockerfile`` and/or ``context``): relative paths are relative to the project root;
  ``context`` defaults to the project root and ``dockerfile`` to ``CONTEXT/Dockerfile``, as with
  ``docker build -f FILE .`` run there. ``tags`` and ``build_args`` are templated. The build log
  is streamed as output lines; a step that fails fails the task with the engine's message.
- Run (``image`` or ``command``): ``image`` defaults to the first tag built (else the built
  image's id); a missing image is pulled. ``command`` is a list (each item templated) or a
  string split like a shell would (templated values stay one word, no shell runs it: write
  ``["sh", "-c", "..."]`` for shell syntax). The container sees only the task's
  ``environment``, not the host's. ``volumes`` are ``HOST:CONTAINER[:MODE]`` bind mounts, HOST
  relative to the project root and inside the project or an allowed folder, like ``context``
  and ``dockerfile`` (``tasks.paths``; named volumes are not supported). Its output is streamed,
  stdout becomes ``result``, its exit code the task's; it is removed afterwards, also on
  failure, timeout and cancellation (SIGTERM, ``kill_grace``, then SIGKILL).
- Current limitation: containers and RUN steps get network "none" (no bridge is assumed).
- Every container carries the labels ``jupyter-workflows.execution``, ``.task``, ``.attempt``.
- ``cwd`` does not apply (a container's is ``working_dir``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from ..base import DeferredTaskType, ModelAt, models_from

if TYPE_CHECKING:
    from .model import DockerFields, DockerTask  # noqa: F401

__getattr__ = models_from("jupyter_workflows.tasks.docker.model", "DockerFields", "DockerTask")


class DockerType(DeferredTaskType):
    name = "docker"
    model = ModelAt("jupyter_workflows.tasks.docker.model:DockerTask")
    implementation = "jupyter_workflows.tasks.docker.runner:DockerRunner"
    path_keys = ("context", "dockerfile", "config.context", "config.dockerfile")

    @classmethod
    def path_fields(cls, task: Mapping[str, Any]) -> Iterator[tuple[str, Any]]:
        yield from super().path_fields(task)
        config = task.get("config")
        for prefix, fields in (("", task), ("config.", config)):
            volumes = fields.get("volumes") if isinstance(fields, Mapping) else None
            for index, volume in enumerate(volumes if isinstance(volumes, list) else []):
                if isinstance(volume, str):  # the HOST of HOST:CONTAINER
                    yield f"{prefix}volumes.{index}", volume.split(":", 1)[0]
