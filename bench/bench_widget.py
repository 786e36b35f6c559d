"""What the live run widget costs a run: the same workflow with and without a RunView attached.

    python bench/bench_widget.py [--repeat 5] [--tasks 500] [--throttle 0.1]

The workload is the issue's: 500 independent no-op shell tasks (`true`) at max_parallel 2,
recording on. The widget is the real anywidget in widget mode, headless. So that a push costs
what it costs in a kernel, its comm serializes every message with jupyter_client's JSON packer
(the kernel's own) instead of dropping it. Runs are interleaved (with, without, with, ...) so
machine noise hits both alike; medians of --repeat runs and their ratio (target: 1.2x or less).
The view's own time (folding events, building and packing pushes) is also measured inside it,
which stays meaningful when other work on the machine makes the wall-clock ratio noisy.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from jupyter_workflows.definition.model import Workflow  # noqa: E402
from jupyter_workflows.engine import WorkflowOrchestrator  # noqa: E402
from jupyter_workflows.jupyter.widget import RunView  # noqa: E402


def install_serializing_comm() -> dict[str, int]:
    """Make widgets' comms pack each message as a kernel would; returns a byte/message tally."""
    import comm
    from comm.base_comm import BaseComm
    from jupyter_client.session import json_packer

    tally = {"messages": 0, "bytes": 0}

    class SerializingComm(BaseComm):
        def publish_msg(self, msg_type: str, data: Any = None, metadata: Any = None,
                        buffers: Any = None, **keys: Any) -> None:  # fmt: skip
            tally["messages"] += 1
            tally["bytes"] += len(json_packer({"data": data, "metadata": metadata or {}}))

    comm.create_comm = SerializingComm
    return tally


class TimedView(RunView):
    """A RunView that adds up the time spent in it: the sink calls and the timed pushes."""

    spent = 0.0

    def __call__(self, event: Any) -> None:
        started = time.perf_counter()
        super().__call__(event)
        self.spent += time.perf_counter() - started

    def _due(self) -> None:
        started = time.perf_counter()
        super()._due()
        self.spent += time.perf_counter() - started


def independent(n: int) -> Workflow:
    tasks = [{"id": f"t{i}", "type": "shell", "command": "true"} for i in range(n)]
    return Workflow.model_validate({"name": "bench-widget", "tasks": tasks})


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--tasks", type=int, default=500)
    parser.add_argument("--throttle", type=float, default=0.1)
    args = parser.parse_args()
    tally = install_serializing_comm()
    root = Path(tempfile.mkdtemp(prefix="bench-widget-"))
    orchestrator = WorkflowOrchestrator(root)  # records to root/workflows/.executions
    workflow = independent(args.tasks)
    orchestrator.execute(independent(20), max_parallel=2)  # warm up imports and the store
    RunView(text=False)

    bare_times: list[float] = []
    view_times: list[float] = []
    pushes: list[int] = []
    inside: list[float] = []
    for _ in range(args.repeat):
        started = time.perf_counter()
        orchestrator.execute(workflow, max_parallel=2)
        bare_times.append(time.perf_counter() - started)

        started = time.perf_counter()
        view = TimedView(text=False, throttle=args.throttle)  # made per run, as a magic would
        execution = orchestrator.execute(workflow, max_parallel=2, sinks=[view])
        view_times.append(time.perf_counter() - started)
        pushes.append(view.pushes)
        inside.append(view.spent)
        final = [t["status"] for t in view.widget.tasks]
        assert final == [str(t.status) for t in execution.tasks.values()], "stale final state"

    b, v = statistics.median(bare_times), statistics.median(view_times)
    print(
        f"{args.tasks} tasks @2, recording on: without widget {b:6.3f}s  with widget {v:6.3f}s  "
        f"ratio {v / b:4.2f}x  (target <= 1.20x)"
    )
    print(
        f"pushes per run: {statistics.median(pushes):.0f} (throttle {args.throttle}s); "
        f"{tally['messages']} comm messages, {tally['bytes'] / 1e6:.1f} MB serialized in total"
    )
    spent = statistics.median(inside)
    print(f"time inside the view per run: {spent * 1000:.1f} ms ({spent / b:.1%} of the run)")
    print("without:", " ".join(f"{t:.3f}" for t in bare_times))
    print("with:   ", " ".join(f"{t:.3f}" for t in view_times))


if __name__ == "__main__":
    main()
