"""``notebook``: execute a parameterised notebook on a (pre-started) kernel, keep the result.

The flow of one attempt: read the notebook, inject the parameters (papermill's way), take a
kernel from the pool, bring it to the task's environment, run the cells with an event per
cell, write the executed notebook (also when a cell fails, the task times out or the kernel
dies), and hand back what the notebook recorded.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...definition.templates import render, render_value
from ...errors import WorkflowError
from ...execution.states import State
from .._spawn import task_cwd
from ..base import LineSink, TaskContext, TaskResult, TaskType
from . import document
from .client import connect, request_reset, request_shutdown, run_silently, setup_code
from .execute import CellRunner
from .kernels import Kernel, KernelError, kernel_env
from .params import inject_parameters
from .pool import KernelPool, default_pool
from .redact import Redactor
from .specs import NATIVE, KernelSpec, resolve_kernel

if TYPE_CHECKING:
    from . import NotebookTask

START_TIMEOUT = 60.0  # seconds a kernel may take to answer (papermill's default too)


@dataclass
class Job:
    """One attempt's inputs, resolved."""

    path: Path
    nb: Any
    spec: KernelSpec
    cwd: str
    output: Path
    parameters: dict[str, Any]
    env: dict[str, str]
    reuse: bool
    redact: Redactor


class NotebookRunner(TaskType):
    """Runs notebooks; ``pool`` (default: the process-wide one) provides the kernels.

    ``reuse_kernel`` is the default for tasks that do not set their ``reuse_kernel`` field.
    """

    name = "notebook"

    def __init__(self, pool: KernelPool | None = None, *, reuse_kernel: bool = False):
        self._pool = pool
        self.reuse_kernel = reuse_kernel

    @property
    def pool(self) -> KernelPool:
        return self._pool or default_pool()

    async def close(self) -> None:
        """End idle kernels now (for the engine to call when a run ends)."""
        self.pool.close()

    async def run(self, task: NotebookTask, ctx: TaskContext) -> TaskResult:  # type: ignore[override]
        job = self._job(task, ctx)  # WorkflowError: the engine fails the task with its message
        runner = CellRunner(job.nb, _masked(ctx.emit_line, job.redact), ctx.emit_progress)
        about = {
            "execution_id": ctx.execution_id,
            "task_id": ctx.task_id,
            "attempt": ctx.attempt,
            "kernel": job.spec.name,
        }
        document.start(
            job.nb,
            input_path=job.path,
            output_path=job.output,
            parameters=job.parameters,
            about=about,
        )
        kernel = await self.pool.acquire(job.spec, job.env, job.cwd, reuse=job.reuse)
        if ctx.custody is not None:  # recorded: should the runner die, its reader ends it
            ctx.custody.started(kernel.pid)
        client = None
        try:
            client, language_info = await connect(kernel, START_TIMEOUT)
            if language_info:  # as papermill records it: from the kernel that ran the notebook
                job.nb.metadata["language_info"] = language_info
            await self._prepare(client, kernel, job)
            await runner.run(client, kernel)
        except BaseException as exc:  # a timeout, a cancellation, a kernel gone: stop it
            await self._discard(kernel, client, ctx.kill_grace)
            if isinstance(exc, KernelError):
                runner.interrupted("KernelDied", str(exc))
                return self._finish(job, runner, ctx, error=str(exc))
            runner.interrupted("Cancelled", "the task was cancelled or timed out here")
            self._finish(job, runner, ctx)
            raise
        self._release(kernel, client, job.reuse, ctx.kill_grace)
        return self._finish(job, runner, ctx)

    # -- steps ----------------------------------------------------------------------------
    def _job(self, task: NotebookTask, ctx: TaskContext) -> Job:
        path = ctx.resolve_path(render(task.notebook, ctx.scope), "notebook")
        nb = document.prepare_input(document.read_notebook(path))
        # The run's parameters (-p), then the task's own, which win: papermill's -p for each.
        parameters = {**ctx.scope.params, **render_value(task.parameters, ctx.scope)}
        name = render(task.kernel, ctx.scope) if task.kernel else document.kernel_name(nb)
        if not name:  # papermill refuses such a notebook; we use the default, and say so
            ctx.emit_line(
                "stderr", f"{path.name} names no kernel (no kernelspec): running it on '{NATIVE}'"
            )
        spec = resolve_kernel(name or NATIVE)
        cwd = task_cwd(task.cwd and render(task.cwd, ctx.scope), ctx)
        if not cwd.is_dir():
            raise WorkflowError(f"working directory {cwd} does not exist")
        if task.output:
            output = ctx.resolve_path(render(task.output, ctx.scope), "output")
        else:
            output = ctx.artifacts_dir / ctx.task_id / path.name
        reuse = self._reuse(task)
        if reuse and spec.language != "python":
            raise WorkflowError(
                f"reuse_kernel needs a Python kernel; kernel '{spec.name}' runs {spec.language}"
            )
        inject_parameters(nb, parameters, spec.language, spec.name)
        env = kernel_env(ctx.env, spec)
        redact = Redactor(ctx.scope.secrets.values())
        return Job(path, nb, spec, str(cwd), output, parameters, env, reuse, redact)

    def _reuse(self, task: NotebookTask) -> bool:
        # The task's reuse_kernel when it sets one, else this type's default.
        if "reuse_kernel" in task.model_fields_set:
            return task.reuse_kernel
        return self.reuse_kernel

    async def _prepare(self, client: Any, kernel: Kernel, job: Job) -> None:
        """Give a pre-started or reused kernel the task's environment and directory.

        (A reused kernel's namespace was reset when its previous notebook ended.)
        """
        if kernel.spec.language == "python":
            cwd = job.cwd if kernel.uses else None  # a notebook may have changed directory
            code = setup_code(kernel.env, job.env, cwd, reset=False)
            if code is not None:
                await run_silently(client, kernel, code)
                kernel.env = dict(job.env)
        kernel.uses += 1

    def _release(self, kernel: Kernel, client: Any, reuse: bool, grace: float) -> None:
        if reuse:
            request_reset(client)
            self.pool.park(kernel)
            return
        request_shutdown(client)
        self.pool.retire(kernel, grace)  # the task does not wait for the process to exit

    async def _discard(self, kernel: Kernel, client: Any, grace: float) -> None:
        if client is not None:
            client.stop_channels()
        await self.pool.kill(kernel, grace)

    def _finish(
        self, job: Job, runner: CellRunner, ctx: TaskContext, error: str | None = None
    ) -> TaskResult:
        """Write the executed notebook and say how the attempt went."""
        position = runner.failed_position()
        count = None if position is None else job.nb.cells[position].get("execution_count")
        document.finish(job.nb, position, count, exited=runner.exited)
        job.redact.value(job.nb)
        records = job.redact.value(dict(runner.records))
        result = {"output": str(job.output), "recorded": records}
        try:
            document.write_notebook(job.nb, job.output)
        except OSError as exc:
            message = f"cannot write the executed notebook to {job.output}: {exc.strerror or exc}"
            ctx.emit_line("stderr", message)
            error = error or message
        if error is None and runner.failure is not None:
            error = runner.failure.message
        if error is None:
            return TaskResult(exit_code=0, result=result, outputs=dict(records))
        return TaskResult(
            status=State.FAILED,
            exit_code=1 if runner.failure is not None else None,
            result=result,
            outputs=dict(records),
            error=job.redact.text(error),
        )


def _masked(emit_line: LineSink, redact: Redactor) -> LineSink:
    if not redact:
        return emit_line

    def emit(stream: str, line: str) -> None:
        emit_line(stream, redact.text(line))

    return emit
