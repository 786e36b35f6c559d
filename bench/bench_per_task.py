"""Per-task cost and memory as a user meets them: `workflow run` as a whole process.

    python bench/bench_per_task.py [--repeat 5] [--big 10000]

- Marginal cost per task, ``(T(1000) - T(1)) / 999``, of ``workflow run`` of N independent
  no-op shell tasks (``true``) at ``--max-parallel 2`` with default settings (recorded, alert
  rules on), against a bare asyncio script spawning the same N commands at the same
  parallelism (``/bin/sh -c true`` with pipes, as the engine does), both timed as whole
  processes (medians of --repeat). The issue's goal: within 1.3x.
- Peak memory (max RSS, from ``wait4``) of a one-task run and of a --big task run, and whether
  time grows linearly (T(big) / T(1000) against big / 1000). Goals: one task < 60 MiB,
  10,000 tasks < 120 MiB.

``bench_engine.py`` times the engine inside one process; this one adds what the command does
around it (start-up, validation, printing, journalling, alert rules).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]
BARE = """
import asyncio, sys

async def one(semaphore):
    async with semaphore:
        proc = await asyncio.create_subprocess_exec(
            "/bin/sh", "-c", "true",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        await proc.communicate()

async def main(n, parallel):
    semaphore = asyncio.Semaphore(parallel)
    await asyncio.gather(*(one(semaphore) for _ in range(n)))

asyncio.run(main(int(sys.argv[1]), int(sys.argv[2])))
"""


def run(args: list[str], cwd: Path) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of one whole process."""
    env = {**os.environ, "PYTHONPATH": str(HERE)}
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # as users have it: compiled modules are reused
    started = time.perf_counter()
    child = subprocess.Popen(args, cwd=cwd, env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)  # fmt: skip
    _, status, usage = os.wait4(child.pid, 0)
    elapsed = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise SystemExit(f"{' '.join(args)} exited with {child.returncode}")
    return elapsed, usage.ru_maxrss / 1024


def workflow(folder: Path, n: int) -> Path:
    path = folder / f"w{n}.json"
    tasks = [{"id": f"t{i}", "type": "shell", "command": "true"} for i in range(n)]
    path.write_text(json.dumps({"name": f"bench-{n}", "tasks": tasks}))
    return path


def median_of(repeat: int, args: list[str], cwd: Path) -> tuple[float, float]:
    runs = [run(args, cwd) for _ in range(repeat)]
    return statistics.median(t for t, _ in runs), max(m for _, m in runs)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--big", type=int, default=10_000)
    parser.add_argument("--parallel", type=int, default=2)
    options = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="bench-per-task-"))
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(HERE / "jupyter_workflows")],
                   check=True)  # fmt: skip
    bare_script = folder / "bare.py"
    bare_script.write_text(BARE)
    py = sys.executable
    command = [py, "-m", "jupyter_workflows", "run"]
    parallel = ["--max-parallel", str(options.parallel)]
    for n in (1, 1000):  # warm-up: bytecode, page cache, the store's first files
        run([*command, str(workflow(folder, n)), *parallel], folder)

    results = {}
    for n in (1, 1000):
        ours = median_of(options.repeat, [*command, str(folder / f"w{n}.json"), *parallel], folder)
        bare = median_of(options.repeat, [py, str(bare_script), str(n), str(options.parallel)],
                         folder)  # fmt: skip
        results[n] = (ours, bare)
        print(f"N={n:>5}: workflow run {ours[0] * 1000:8.1f} ms ({ours[1]:.0f} MiB), "
              f"bare asyncio {bare[0] * 1000:8.1f} ms ({bare[1]:.0f} MiB)")  # fmt: skip
    ours_ms = (results[1000][0][0] - results[1][0][0]) / 999 * 1000
    bare_ms = (results[1000][1][0] - results[1][1][0]) / 999 * 1000
    print(f"marginal cost per task: workflow run {ours_ms:.3f} ms, bare asyncio {bare_ms:.3f} ms,"
          f" ratio {ours_ms / bare_ms:.2f}x (goal: within 1.3x)")  # fmt: skip
    print(f"one-task run: peak {results[1][0][1]:.0f} MiB (goal < 60 MiB)")

    big = workflow(folder, options.big)
    elapsed, peak = run([*command, str(big), *parallel], folder)
    linear = elapsed / results[1000][0][0] / (options.big / 1000)
    print(f"N={options.big}: workflow run {elapsed:.2f} s, peak {peak:.0f} MiB (goal < 120 MiB); "
          f"time / (T(1000) x {options.big // 1000}) = {linear:.2f} (1.0 is linear)")  # fmt: skip


if __name__ == "__main__":
    main()
