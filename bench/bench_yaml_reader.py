"""The bounded YAML reader (definition/yaml_reader.py) against PyYAML on the same texts.

    python bench/bench_yaml_reader.py [--repeat 5]

Each text is read, in this one process and in turn, by:
- ``events``: PyYAML's C parser producing its events and nothing else, the floor every
  event-driven reader pays;
- ``safe_load``: ``yaml.load(text, CSafeLoader)``, what a reader without limits would use;
- ``ours``: ``yaml_reader.read``, which counts, bounds, resolves and places every value.

CPU time (``time.process_time``), medians of --repeat, and ours as a ratio of each. The texts
are the shapes a large workflow file takes: long lists of numbers and words, a flat mapping,
and 20,000 tasks; the first two stop at the limit of 250,000 values, as a hostile file does
(tests/adversarial/test_hostile_definitions.py holds every such file under 1 s of CPU).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from jupyter_workflows.definition import limits, yaml_reader  # noqa: E402

LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
N = limits.MAX_NODES + 10


def texts() -> dict[str, str]:
    tasks = "".join(
        f"  - id: t{i}\n    type: shell\n    command: echo {i}\n    depends_on: [t{i - 1}]\n"
        for i in range(1, 20_000)
    )
    return {
        "250,000 numbers (over the limit)": "tasks: [" + ",".join(map(str, range(1, N))) + "]\n",
        "250,000 words (over the limit)": "tasks: [" + ",".join(f"w{i}" for i in range(N)) + "]\n",
        "125,000 keys": "{" + ", ".join(f'"K{i}": "v"' for i in range(N // 2 - 20)) + "}\n",
        "20,000 tasks": "name: big\ntasks:\n" + tasks,
    }


def events(text: str) -> None:
    for _ in yaml.parse(text, Loader=LOADER):
        pass


def safe_load(text: str) -> None:
    yaml.load(text, Loader=LOADER)


def ours(text: str) -> None:
    try:
        yaml_reader.read(text)
    except yaml_reader.YamlProblem:
        pass  # the over-the-limit texts: refused at the value past it, as they should be


def cpu(read: Callable[[str], None], text: str) -> float:
    started = time.process_time()
    read(text)
    return time.process_time() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    readers = {"events": events, "safe_load": safe_load, "ours": ours}
    print(f"{'text':<34} {'events':>8} {'safe_load':>10} {'ours':>8}  ours/events  ours/safe_load")
    for name, text in texts().items():
        times: dict[str, list[float]] = {reader: [] for reader in readers}
        for _ in range(args.repeat):
            for reader, read in readers.items():  # in turn, so noise falls on all three
                times[reader].append(cpu(read, text))
        m = {reader: statistics.median(t) for reader, t in times.items()}
        print(
            f"{name:<34} {m['events']:7.3f}s {m['safe_load']:9.3f}s {m['ours']:7.3f}s"
            f"  {m['ours'] / m['events']:10.2f}x  {m['ours'] / m['safe_load']:13.2f}x"
        )


if __name__ == "__main__":
    main()
