"""The work of ``docker`` tasks: build and run through the Docker SDK, logs streamed."""

from __future__ import annotations

import asyncio
import re
import shlex
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ...definition.templates import find_references, render, to_text
from ...execution.states import State
from ..base import TaskContext, TaskResult, TaskType, parse_result
from .build import BuildSpec, Built, build_image
from .client import DockerFailure, Relay, Streams, connect, describe, engine_address
from .run import Ran, RunSpec, remove, run_container, stop_and_remove

if TYPE_CHECKING:
    from ...definition.templates import Scope
    from . import DockerTask

LABEL = "jupyter-workflows"
_MARK_RE = re.compile("\x00([0-9]+)\x00")


@dataclass
class _Plan:
    build: BuildSpec | None
    run: RunSpec | None  # image "" = the image just built


class DockerRunner(TaskType):
    name = "docker"

    async def run(self, task: DockerTask, ctx: TaskContext) -> TaskResult:  # type: ignore[override]
        try:
            plan = _plan(task, ctx)
        except DockerFailure as exc:
            return _failed(exc)
        relay = Relay(asyncio.get_running_loop(), ctx.emit_line)
        try:
            return await _execute(plan, ctx, relay)
        except DockerFailure as exc:
            return _failed(exc)
        except Exception as exc:
            if not _from_docker(exc):
                raise
            return TaskResult.failure(describe(exc, engine_address(ctx.env)))
        finally:
            relay.closed = True  # a worker thread left behind says nothing more


async def _execute(plan: _Plan, ctx: TaskContext, relay: Relay) -> TaskResult:
    streams = Streams()
    client = await _in_thread(streams, relay, connect, ctx.env)
    streams.watch(client.api)
    try:
        built = None
        if plan.build is not None:
            built = await _in_thread(streams, relay, build_image, client.api, plan.build, relay)
        if plan.run is None:
            assert built is not None
            return TaskResult(
                result={"image_id": built.image_id, "tags": built.tags},
                outputs={"image_id": built.image_id, "image": built.reference},
            )
        if not plan.run.image:
            assert built is not None
            plan.run.image = built.reference
        ran = await _run(client.api, plan.run, relay, streams, ctx)
        return _run_result(ran, plan.run.image, built)
    finally:
        client.close()


async def _in_thread(streams: Streams, relay: Relay, fn: Any, *args: Any) -> Any:
    """``fn(*args)`` in a worker thread; on cancel, close its streams so that thread ends."""
    try:
        return await asyncio.to_thread(fn, *args)
    except asyncio.CancelledError:
        relay.closed = True
        streams.cancel()
        raise


async def _run(api: Any, spec: RunSpec, relay: Relay, streams: Streams, ctx: TaskContext) -> Ran:
    """Run the container; remove it afterwards, or stop and remove it when cancelled."""
    try:
        ran: Ran = await _in_thread(streams, relay, run_container, api, spec, relay, streams)
    except asyncio.CancelledError:
        if streams.container is not None:
            # Shielded: a second cancel must not stop the removal half-way.
            stop = asyncio.to_thread(stop_and_remove, api, streams.container, ctx.kill_grace)
            await asyncio.shield(stop)
        raise
    except BaseException:
        await _remove(api, streams, ctx)
        raise
    await _remove(api, streams, ctx)
    return ran


async def _remove(api: Any, streams: Streams, ctx: TaskContext) -> None:
    if streams.container is None:
        return
    problem = await asyncio.to_thread(remove, api, streams.container)
    if problem:
        ctx.emit_line("stderr", problem)


def _run_result(ran: Ran, image: str, built: Built | None) -> TaskResult:
    outputs: dict[str, Any] = {"image": image}
    if built is not None:
        outputs["image_id"] = built.image_id
    result = TaskResult(exit_code=ran.exit_code, result=parse_result(ran.stdout), outputs=outputs)
    if ran.exit_code != 0:
        result.status = State.FAILED
        if ran.oom_killed:
            result.error = f"killed: out of memory (exit code {ran.exit_code})"
        else:
            result.error = f"exited with code {ran.exit_code}"
            if ran.stderr_tail:
                result.error += f": {ran.stderr_tail[-1]}"
    return result


def _failed(exc: DockerFailure) -> TaskResult:
    result = TaskResult.failure(str(exc), exit_code=exc.exit_code)
    result.retryable = exc.retryable
    return result


def _from_docker(exc: BaseException) -> bool:
    """Errors of the SDK or its HTTP stack: the engine's or the connection's, not ours."""
    import docker
    import requests
    import urllib3

    return isinstance(
        exc,
        (
            docker.errors.DockerException,
            requests.RequestException,
            urllib3.exceptions.HTTPError,
            ConnectionError,
        ),
    )


# ---------------------------------------------------------------------- the task, rendered


def _plan(task: DockerTask, ctx: TaskContext) -> _Plan:
    """Render and resolve everything up front, so bad input fails before the engine is asked."""
    scope = ctx.scope
    build = _build_spec(task, ctx) if task.dockerfile or task.context else None
    run = None
    if task.image or task.command is not None:
        labels = {
            f"{LABEL}.execution": ctx.execution_id,
            f"{LABEL}.task": ctx.task_id,
            f"{LABEL}.attempt": str(ctx.attempt),
        }
        image = render(task.image, scope).strip() if task.image else ""
        if task.image and not image and build is None:
            raise DockerFailure(f"image {task.image!r} renders as ''", retryable=False)
        run = RunSpec(
            image=image,
            command=None if task.command is None else command_argv(task.command, scope),
            environment={key: render(value, scope) for key, value in task.environment.items()},
            binds=[_bind(volume, ctx, f"volumes[{i}]") for i, volume in enumerate(task.volumes)],
            working_dir=render(task.working_dir, scope) if task.working_dir else None,
            labels=labels,
        )
    return _Plan(build=build, run=run)


def _build_spec(task: DockerTask, ctx: TaskContext) -> BuildSpec:
    context = ctx.resolve_path(render(task.context or ".", ctx.scope), "context")
    if not context.is_dir():
        raise DockerFailure(f"build context {context} is not a directory", retryable=False)
    dockerfile = (
        ctx.resolve_path(render(task.dockerfile, ctx.scope), "dockerfile")
        if task.dockerfile
        else context / "Dockerfile"
    )
    if not dockerfile.is_file():
        raise DockerFailure(f"Dockerfile {dockerfile} not found", retryable=False)
    tags = [render(tag, ctx.scope).strip() for tag in task.tags]
    for template, tag in zip(task.tags, tags, strict=True):
        if not tag or tag.endswith(":") or tag.startswith(":"):
            raise DockerFailure(
                f"tag {template!r} renders as {tag!r}: not an image name", retryable=False
            )
    build_args = {key: render(value, ctx.scope) for key, value in task.build_args.items()}
    return BuildSpec(dockerfile=dockerfile, context=context, tags=tags, build_args=build_args)


def _bind(volume: str, ctx: TaskContext, field: str) -> str:
    """``HOST:CONTAINER[:MODE]`` with HOST made absolute (relative to the project root)."""
    parts = render(volume, ctx.scope).split(":")
    if len(parts) not in (2, 3) or not parts[0] or not parts[1]:
        raise DockerFailure(
            f"volume {volume!r}: expected HOST:CONTAINER or HOST:CONTAINER:MODE (ro, rw)",
            retryable=False,
        )
    parts[0] = str(ctx.resolve_path(parts[0], field))
    return ":".join(parts)


def command_argv(command: str | list[str], scope: Scope) -> list[str]:
    """The container's argv: a list item by item; a string split by shell quoting rules.

    The string is split before values are put in, so a value with spaces or quotes in it
    stays one word (or part of one), as it would inside quotes: nothing it holds is syntax.
    """
    if isinstance(command, list):
        return [render(item, scope) for item in command]
    values: list[str] = []
    pieces: list[str] = []
    position = 0
    for reference in find_references(command):
        pieces.append(render(command[position : reference.start], scope))  # unescapes $${
        pieces.append(f"\x00{len(values)}\x00")
        values.append(to_text(scope.resolve(reference)))
        position = reference.end
    pieces.append(render(command[position:], scope))
    try:
        words = shlex.split("".join(pieces))
    except ValueError as exc:  # "No closing quotation"
        raise DockerFailure(f"command {command!r}: {exc}", retryable=False) from None
    return [_MARK_RE.sub(lambda match: values[int(match.group(1))], word) for word in words]
