"""Two checkouts of this project, timed in turns in one script: whole-process starts.

    python bench/compare_checkouts.py BEFORE [AFTER] [--rounds 11]

BEFORE and AFTER are git revisions (AFTER defaults to the working tree); each revision is
checked out in a temporary worktree. Every round runs each command once for each checkout,
one after the other, so a busy spell on this shared machine hits both alike; medians are shown
in ms and as multiples of ``python -c pass``, timed in the same rounds. The commands:
``workflow --help``, ``validate`` of a one-task file, and ``run`` of one shell task, one python
task, one http task (to a server of this script's own on 127.0.0.1) and a loop of two shell
tasks, all recorded in one temporary project with the default alert rules.
"""

from __future__ import annotations

import argparse
import http.server
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from ok_server import Ok  # bench/, this script's folder

HERE = Path(__file__).resolve().parents[1]


def checkout(revision: str | None, folder: Path) -> Path:
    if revision is None:
        return HERE
    subprocess.run(["git", "-C", str(HERE), "worktree", "add", "-q", "--detach", str(folder),
                    revision], check=True)  # fmt: skip
    return folder


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("before")
    parser.add_argument("after", nargs="?")
    parser.add_argument("--rounds", type=int, default=11)
    options = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="compare-checkouts-"))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Ok)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    tasks = {
        "shell": {"id": "a", "type": "shell", "command": "true"},
        "python": {"id": "a", "type": "python", "code": "pass"},
        "http": {"id": "a", "type": "http", "url": url, "expected_status": 204},
        "loop": {"id": "a", "type": "loop", "items": [1, 2], "then": {"command": "true"}},
    }
    for name, task in tasks.items():
        (work / f"{name}.json").write_text(json.dumps({"name": name, "tasks": [task]}))
    trees = {
        "before": checkout(options.before, work / "before"),
        "after": checkout(options.after, work / "after"),
    }
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    py = sys.executable
    commands: dict[str, tuple[Path | None, list[str]]] = {"python -c pass": (None, ["-c", "pass"])}
    verbs = [["--help"], ["validate", "shell.json"]] + [["run", f"{n}.json"] for n in tasks]
    for verb in verbs:
        for label, tree in trees.items():
            commands[f"{' '.join(verb)} ({label})"] = (tree, ["-m", "jupyter_workflows", *verb])
    for tree in trees.values():  # as users have it: compiled modules
        subprocess.run([py, "-m", "compileall", "-q", str(tree / "jupyter_workflows")],
                       check=True, env=env)  # fmt: skip

    def once(tree: Path | None, args: list[str]) -> float:
        child_env = {**env, "PYTHONPATH": str(tree)} if tree else env
        started = time.perf_counter()
        subprocess.run([py, *args], cwd=work, env=child_env, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        return time.perf_counter() - started

    try:
        for tree, args in commands.values():  # warm-up: page cache, the store's first files
            once(tree, args)
        times: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(options.rounds):
            for name, (tree, args) in commands.items():
                times[name].append(once(tree, args))
    finally:
        server.shutdown()
        for tree in trees.values():
            if tree != HERE:
                subprocess.run(["git", "-C", str(HERE), "worktree", "remove", "--force",
                                str(tree)], check=False)  # fmt: skip
    floor = statistics.median(times["python -c pass"])
    after = options.after or "the working tree"
    print(f"{options.rounds} rounds, before = {options.before}, after = {after}")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name:<28} {median * 1000:7.1f} ms {median / floor:6.1f}x")


if __name__ == "__main__":
    main()
