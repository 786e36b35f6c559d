"""``notebook`` tasks: parameterised notebooks on pre-started kernels, papermill-compatible.

Fields (``NotebookTask``): ``notebook`` (input path, relative to the project root),
``parameters`` (templated; injected papermill's way after the cell tagged ``parameters``),
``kernel`` (default: the notebook's kernelspec, else ``python3`` = this interpreter's
ipykernel), ``cwd`` (default: the project root), ``output`` (templated; default: the
execution's artifacts folder, ``<task id>/<notebook name>``), ``timeout`` (stops the kernel;
the partly executed notebook is still written) and, opt-in, ``reuse_kernel``.

- papermill parity (checked against papermill itself, ``tests/tasks/test_notebook_parity.py``):
  the kernelspec ``python`` runs on ``python3``; error banners an earlier papermill run left
  in the input are removed first; the output is nbformat 4.5 (cell ids) with the running
  kernel's ``language_info``; markdown cells are marked completed; a ``SystemExit(0)`` cell
  is marked failed but the notebook succeeds. Where papermill refuses a notebook without a
  kernelspec, we run it on ``python3`` and say so in the task's log.
- ``result`` is ``{"output": <executed notebook path>, "recorded": {...}}``; ``outputs`` are
  exactly the values the notebook recorded with ``jupyter_workflows.record(name, value)``.
- Each cell that runs emits progress events ("cell 3/12", running then succeeded or failed);
  its stream output reaches the task's log as it arrives. A failing cell fails the task with
  "cell 3/12 raised ZeroDivisionError: division by zero".
- Speed: kernels come from a process-wide pool (``pool.KernelPool``). Each notebook gets a
  fresh kernel process, forked from a warm server that has imported ipykernel once; while a
  notebook runs, the next kernels start in the background. A kernel started before its task
  gets the task's environment through ``os.environ`` (setup code run silently before the
  first cell, never written into the notebook); variables read only when an interpreter
  starts (PYTHON*, LD_*, LC_*, LANG) select a separate pool and fork server instead.
- ``reuse_kernel: true``: one kernel per (kernel, cwd) serves task after task; between
  notebooks its namespace is reset (``%reset -f``), its execution count restarts, open
  matplotlib figures close, its environment and working directory are set back. What can
  still leak: imported modules and their state (module globals, caches, registries, patched
  functions), C extensions' state, threads and subprocesses a notebook started, changes a
  notebook made itself to ``os.environ`` for variables the task does not set, ``sys.path``,
  signal handlers, logging configuration, random seeds.
- Known difference from a ``python -m ipykernel_launcher`` kernel: kernels forked from one
  server share its string hash seed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..base import DeferredTaskType, ModelAt, models_from

if TYPE_CHECKING:
    from .model import NotebookTask  # noqa: F401

__getattr__ = models_from("jupyter_workflows.tasks.notebook.model", "NotebookTask")


class NotebookType(DeferredTaskType):
    name = "notebook"
    model = ModelAt("jupyter_workflows.tasks.notebook.model:NotebookTask")
    path_keys = ("notebook", "output", "cwd")
    implementation = "jupyter_workflows.tasks.notebook.runner:NotebookRunner"
