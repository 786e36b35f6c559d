"""The dask executor against bare Dask, side by side in one process (issue 14).

    python bench/bench_dask.py [--repeat 5] [--tasks 500] [--parallel 2] [--startup 5]

1. Throughput: ``--tasks`` no-op shell tasks (``true``) through the engine with the dask
   executor, against the same commands submitted bare with ``client.submit(subprocess.run,
   ["/bin/sh", "-c", "true"], capture_output=True)``, both on one fixed LocalCluster (2 worker
   processes, 1 thread each, 127.0.0.1) and with the same number of tasks in flight (the
   engine's max_parallel, ``--parallel``). The engine side is a whole run, as a user gets it:
   it connects its own client to the cluster's address, checks the workers (resources, the
   shared project folder), records every event in its journal and streams each attempt's
   placement back. Interleaved repeats, medians, the ratio (the goal: within 1.5x).
2. Start-up with a LocalCluster per run (``--executor dask``): in-process, the time from
   ``execute()`` to the one task starting on a worker, against the local executor; and the
   whole process of ``workflow run`` of a one-task workflow, ``--executor dask`` against
   ``--executor local``. Medians of ``--startup`` interleaved runs.

The machine is shared and noisy: trust the ratios of interleaved medians, not single runs.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from jupyter_workflows.definition.model import Workflow  # noqa: E402
from jupyter_workflows.engine import WorkflowOrchestrator  # noqa: E402
from jupyter_workflows.execution.events import AttemptPlaced, TaskStarted  # noqa: E402
from jupyter_workflows.execution.states import State  # noqa: E402

COMMAND = ["/bin/sh", "-c", "true"]


def no_ops(n: int) -> Workflow:
    tasks = [{"id": f"t{i}", "type": "shell", "command": "true"} for i in range(n)]
    return Workflow.model_validate({"name": "bench-dask", "tasks": tasks})


def bare_dask(client: Any, n: int, parallel: int) -> None:
    """``n`` commands through ``client.submit``, never more than ``parallel`` in flight."""
    from distributed import as_completed

    def submit() -> Any:
        return client.submit(subprocess.run, COMMAND, capture_output=True, pure=False)

    first = [submit() for _ in range(min(parallel, n))]
    left = n - len(first)
    pending = as_completed(first)
    for future in pending:
        assert future.result().returncode == 0
        future.release()
        if left:
            pending.add(submit())
            left -= 1


def timed(func: Callable[[], Any]) -> float:
    started = time.perf_counter()
    func()
    return time.perf_counter() - started


def throughput(args: argparse.Namespace, project: Path) -> None:
    from distributed import Client, LocalCluster

    cluster = LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
    )
    client = Client(cluster)
    orchestrator = WorkflowOrchestrator(project, cluster=cluster.scheduler_address)
    workflow = no_ops(args.tasks)

    def ours() -> None:
        execution = orchestrator.execute(workflow, max_parallel=args.parallel)
        assert execution.status is State.SUCCEEDED, execution.error

    try:
        bare_dask(client, 20, args.parallel)  # warm both sides: imports, worker caches
        orchestrator.execute(no_ops(20), max_parallel=args.parallel)
        bare_times, our_times = [], []
        for _ in range(args.repeat):  # interleaved so machine noise hits both alike
            bare_times.append(timed(lambda: bare_dask(client, args.tasks, args.parallel)))
            our_times.append(timed(ours))
    finally:
        client.close()
        cluster.close()
    b, o = statistics.median(bare_times), statistics.median(our_times)
    n = args.tasks
    print(f"{n} no-op shell tasks, {args.parallel} in flight, 2-worker LocalCluster")
    print(f"  bare client.submit   {b:6.3f}s  {n / b:6.1f} tasks/s  {b / n * 1000:5.2f} ms/task")
    print(f"  dask executor        {o:6.3f}s  {n / o:6.1f} tasks/s  {o / n * 1000:5.2f} ms/task")
    print(f"  ratio {o / b:4.2f}x  (our cost {(o - b) / n * 1000:5.2f} ms/task)")
    print(f"  runs (s): bare {_fmt(bare_times)}  ours {_fmt(our_times)}")


def first_task_start(project: Path, executor: str) -> float:
    """Seconds from ``execute()`` to the one task starting where it runs."""
    marks: dict[str, float] = {}
    # the worker saying it started the attempt (dask), the engine starting it (local)
    mark = AttemptPlaced if executor == "dask" else TaskStarted

    def sink(event: Any) -> None:
        if isinstance(event, mark) and "started" not in marks:
            marks["started"] = time.perf_counter()

    orchestrator = WorkflowOrchestrator(project, executor=executor, sinks=[sink])
    started = time.perf_counter()
    execution = orchestrator.execute(no_ops(1))
    assert execution.status is State.SUCCEEDED, execution.error
    return marks["started"] - started


def whole_process(project: Path, path: Path, executor: str) -> float:
    command = [sys.executable, "-m", "jupyter_workflows", "run", str(path), "--no-alerts",
               "--executor", executor]  # fmt: skip
    started = time.perf_counter()
    done = subprocess.run(command, cwd=project, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    assert done.returncode == 0, done.stderr
    return elapsed


def startup(args: argparse.Namespace, project: Path) -> None:
    path = project / "workflows" / "definitions" / "one.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"name": "one", "tasks": [
        {"id": "t", "type": "shell", "command": "true"}]}))  # fmt: skip
    first: dict[str, list[float]] = {"local": [], "dask": []}
    process: dict[str, list[float]] = {"local": [], "dask": []}
    for _ in range(args.startup):
        for executor in ("local", "dask"):
            first[executor].append(first_task_start(project, executor))
            process[executor].append(whole_process(project, path, executor))
    fl, fd = statistics.median(first["local"]), statistics.median(first["dask"])
    pl, pd = statistics.median(process["local"]), statistics.median(process["dask"])
    print("start-up, a one-task workflow, --executor dask (a LocalCluster per run)")
    print(f"  execute() to the task starting: local {fl * 1000:6.0f} ms  dask {fd * 1000:6.0f} ms")
    print(f"  workflow run, whole process:    local {pl * 1000:6.0f} ms  dask {pd * 1000:6.0f} ms"
          f"  (+{(pd - pl) * 1000:.0f} ms)")  # fmt: skip
    print(f"  runs (s): first dask {_fmt(first['dask'])}  process dask {_fmt(process['dask'])}")


def _fmt(values: list[float]) -> str:
    return "[" + " ".join(f"{v:.2f}" for v in values) + "]"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--tasks", type=int, default=500)
    parser.add_argument("--parallel", type=int, default=2)
    parser.add_argument("--startup", type=int, default=5, help="start-up runs (0: skip)")
    args = parser.parse_args()
    project = Path(tempfile.mkdtemp(prefix="bench-dask-"))
    (project / "workflows").mkdir()
    (project / "workflows" / "config.json").write_text("{}")
    throughput(args, project)
    if args.startup:
        startup(args, project)


if __name__ == "__main__":
    main()
