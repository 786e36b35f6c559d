"""Engine overhead against bare asyncio, side by side in one process.

    python bench/bench_engine.py [--repeat 5]

Workloads (the core issue's targets: within 1.5x of bare asyncio, recording included):
- 1,000 independent no-op shell tasks (`true`) at max_parallel 2;
- a chain of 200 tasks, each depending on the previous one.
Recording is included: every run appends its events to its journal as they happen and fsyncs
it at the end; the DuckDB index is brought up to date by the next read (timed separately).
The baseline spawns the same commands (`/bin/sh -c true`, pipes for stdout and stderr, as the
engine does) with bare asyncio at the same parallelism. Medians of --repeat runs, as ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from jupyter_workflows.definition.model import Workflow  # noqa: E402
from jupyter_workflows.engine import WorkflowOrchestrator  # noqa: E402


async def _bare_one(semaphore: asyncio.Semaphore) -> None:
    async with semaphore:
        proc = await asyncio.create_subprocess_exec(
            "/bin/sh", "-c", "true", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        await proc.communicate()


async def bare_independent(n: int, parallel: int) -> None:
    semaphore = asyncio.Semaphore(parallel)
    await asyncio.gather(*(_bare_one(semaphore) for _ in range(n)))


async def bare_chain(n: int) -> None:
    semaphore = asyncio.Semaphore(1)
    for _ in range(n):
        await _bare_one(semaphore)


def independent(n: int) -> Workflow:
    tasks = [{"id": f"t{i}", "type": "shell", "command": "true"} for i in range(n)]
    return Workflow.model_validate({"name": "bench-independent", "tasks": tasks})


def chain(n: int) -> Workflow:
    tasks = [
        {
            "id": f"t{i}",
            "type": "shell",
            "command": "true",
            **({"depends_on": [f"t{i - 1}"]} if i else {}),
        }
        for i in range(n)
    ]
    return Workflow.model_validate({"name": "bench-chain", "tasks": tasks})


def timed(func) -> float:
    started = time.perf_counter()
    func()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-engine-"))
    orchestrator = WorkflowOrchestrator(root)  # records to root/workflows/.executions
    cases = {
        "1000 independent @2": (
            lambda: asyncio.run(bare_independent(1000, 2)),
            lambda: orchestrator.execute(independent(1000), max_parallel=2),
            1000,
        ),
        "chain of 200": (
            lambda: asyncio.run(bare_chain(200)),
            lambda: orchestrator.execute(chain(200), max_parallel=2),
            200,
        ),
    }
    for name, (bare, ours, tasks) in cases.items():
        bare_times, our_times = [], []
        for _ in range(args.repeat):  # interleaved so machine noise hits both alike
            bare_times.append(timed(bare))
            our_times.append(timed(ours))
        b, o = statistics.median(bare_times), statistics.median(our_times)
        print(
            f"{name:22s} bare asyncio {b:6.3f}s  jupyter-workflows {o:6.3f}s  "
            f"ratio {o / b:4.2f}x  our cost {(o - b) / tasks * 1000:5.2f} ms/task"
        )
    # Runners only append journals; the next read indexes them. Show what that read costs.
    orchestrator.store.refresh()
    orchestrator.execute(independent(1000), max_parallel=2)
    refresh = timed(orchestrator.store.refresh)
    summaries = orchestrator.store.history(limit=None)
    print(f"indexing one 1000-task run on the next read: {refresh * 1000:.0f} ms")
    print(f"recorded executions: {len(summaries)} (all in {orchestrator.store.path})")


if __name__ == "__main__":
    main()
