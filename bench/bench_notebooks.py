"""Notebook tasks against papermill: 20 small parameterised notebooks, same machine, same script.

    python bench/bench_notebooks.py [--repeat 3] [--count 20]

Each notebook has a cell tagged "parameters" and three trivial cells. Cases:
(a) 20 notebook tasks of one workflow through WorkflowOrchestrator, recorded in a store like
    any run: a chain (each depends on the one before) and independent at max_parallel 2;
(b) a loop of ``papermill.execute_notebook`` in this process;
(c) 20 ``papermill`` CLI calls, one after the other (a subprocess each);
(d) the chain again with ``reuse_kernel`` (one kernel, namespace reset between notebooks).
Every case runs once untimed first (imports, papermill's and our fork server's start), then
--repeat times; medians are reported, with each case's ratio to (b). Before each timed run of
(a) and (d) the pool's idle kernels are ended, so no run starts with kernels ready.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import nbformat  # noqa: E402

from jupyter_workflows.definition.model import Workflow  # noqa: E402
from jupyter_workflows.engine import WorkflowOrchestrator  # noqa: E402
from jupyter_workflows.execution.states import State  # noqa: E402
from jupyter_workflows.tasks import registry  # noqa: E402
from jupyter_workflows.tasks.notebook.runner import NotebookRunner  # noqa: E402


def make_notebooks(folder: Path, count: int) -> list[Path]:
    paths = []
    for i in range(count):
        nb = nbformat.v4.new_notebook()
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                     "language": "python"}  # fmt: skip
        params = nbformat.v4.new_code_cell("n = 10\nlabel = 'default'")
        params.metadata["tags"] = ["parameters"]
        nb.cells = [
            params,
            nbformat.v4.new_code_cell("total = sum(range(n))"),
            nbformat.v4.new_code_cell("squares = [x * x for x in range(n)]"),
            nbformat.v4.new_code_cell("print(label, total, len(squares))"),
        ]
        path = folder / f"nb{i:02d}.ipynb"
        nbformat.write(nb, str(path))
        paths.append(path)
    return paths


def parameters(i: int) -> dict[str, Any]:
    return {"n": 100 + i, "label": f"run-{i}"}


def workflow(paths: list[Path], root: Path, chain: bool, reuse: bool) -> Workflow:
    tasks = []
    for i, path in enumerate(paths):
        task: dict[str, Any] = {
            "id": f"nb{i:02d}",
            "type": "notebook",
            "notebook": str(path.relative_to(root)),
            "parameters": parameters(i),
        }
        if chain and i:
            task["depends_on"] = [f"nb{i - 1:02d}"]
        if reuse:
            task["reuse_kernel"] = True
        tasks.append(task)
    return Workflow.model_validate({"name": "bench-notebooks", "tasks": tasks})


def run_tasks(root: Path, paths: list[Path], *, chain: bool, parallel: int, reuse: bool) -> None:
    notebook_type = registry.get_task_type("notebook")
    assert isinstance(notebook_type, NotebookRunner)
    notebook_type.pool.close()  # no run starts with kernels ready
    execution = WorkflowOrchestrator(root).execute(
        workflow(paths, root, chain, reuse), max_parallel=parallel
    )
    failed = [t.id for t in execution.tasks.values() if t.status is not State.SUCCEEDED]
    if failed:
        raise SystemExit(f"notebook tasks failed: {failed}: {execution.tasks[failed[0]].error}")


def papermill_loop(paths: list[Path], out: Path) -> None:
    import papermill

    for i, path in enumerate(paths):
        papermill.execute_notebook(
            str(path), str(out / path.name), parameters=parameters(i), progress_bar=False
        )


def papermill_cli(paths: list[Path], out: Path) -> None:
    papermill = shutil.which("papermill", path=os.path.dirname(sys.executable)) or "papermill"
    for i, path in enumerate(paths):
        argv = [papermill, str(path), str(out / path.name), "--no-progress-bar", "--log-level",
                "ERROR"]  # fmt: skip
        for name, value in parameters(i).items():
            argv += ["-p", name, str(value)]
        subprocess.run(argv, check=True, capture_output=True)


def timed(func: Callable[[], None]) -> float:
    started = time.perf_counter()
    func()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--count", type=int, default=20)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-notebooks-"))
    (root / "notebooks").mkdir()
    out = root / "papermill-out"
    out.mkdir()
    paths = make_notebooks(root / "notebooks", args.count)
    n = args.count
    cases: dict[str, Callable[[], None]] = {
        "(b) papermill.execute_notebook loop": lambda: papermill_loop(paths, out),
        f"(c) papermill CLI x{n}": lambda: papermill_cli(paths, out),
        "(a) notebook tasks, chain": lambda: run_tasks(
            root, paths, chain=True, parallel=1, reuse=False
        ),
        "(a) notebook tasks, independent @2": lambda: run_tasks(
            root, paths, chain=False, parallel=2, reuse=False
        ),
        "(d) notebook tasks, chain, reuse_kernel": lambda: run_tasks(
            root, paths, chain=True, parallel=1, reuse=True
        ),
    }
    times: dict[str, list[float]] = {name: [] for name in cases}
    for name, case in cases.items():
        case()  # warm-up: imports, the fork server
        for _ in range(args.repeat):
            times[name].append(timed(case))
    baseline = statistics.median(times["(b) papermill.execute_notebook loop"])
    print(f"{n} notebooks, median of {args.repeat} runs, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.2f}")  # fmt: skip
    print(f"{'case':42} {'total':>8} {'per nb':>8} {'vs (b)':>8}   runs")
    for name, values in times.items():
        median = statistics.median(values)
        runs = " ".join(f"{v:.2f}" for v in values)
        speedup = baseline / median
        print(f"{name:42} {median:7.2f}s {median / n * 1000:6.0f}ms {speedup:7.1f}x   {runs}")
    shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
