"""The webhook endpoint under load: the real ``workflow serve`` against a local load generator.

    python bench/bench_webhook.py [--repeat 3] [--requests 1000] [--clients 50]

Each phase starts ``workflow serve --port 0`` on a fresh project whose hook is signed
(X-Hub-Signature-256 and a delivery id per request, as GitHub sends them) and whose runs are
slow (``sleep 0.5``), so runs are always running and waiting while requests arrive:

- latency: ``--sequential`` requests one after another, ``--pace`` apart (concurrency 4, wait
  list 10,000: every request is accepted and queued while runs start, end and pile up). The
  issue's goal: a median under 50 ms.
- load: ``--requests`` requests over ``--clients`` keep-alive connections (concurrency 4, wait
  list 100): each must be accepted (202) or refused cleanly (503 with Retry-After); any other
  status or a connection error counts as dropped. Run twice: with a minimal raw HTTP/1.1 client
  (what the server costs) and with httpx.AsyncClient (a common Python client; on 2 cores it
  becomes the bottleneck near 200 requests/s, so its latencies are mostly its own queueing).

After each phase the server gets SIGTERM: it must exit 0, and every accepted execution id must
be in the store (run, or recorded as cancelled). Medians over the repeats.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from jupyter_workflows.store import ExecutionStore, default_store_path  # noqa: E402
from jupyter_workflows.triggers.signature import sign  # noqa: E402

SECRET = "bench-secret"
HOOK = "/bench"
Result = tuple[int | str, float, str | None]  # status (or error name), seconds, execution id
Load = Callable[[str], "Coroutine[Any, Any, list[Result]]"]  # server url -> results


def make_project() -> Path:
    root = Path(tempfile.mkdtemp(prefix="bench-webhook-"))
    definitions = root / "workflows" / "definitions"
    definitions.mkdir(parents=True)
    workflow = {
        "name": "bench-hook",
        "trigger": {"type": "webhook", "config": {"webhook": HOOK, "secret_env": "BENCH_SECRET"}},
        "tasks": [{"id": "work", "type": "shell", "command": "sleep 0.5"}],
    }
    (definitions / "bench.json").write_text(json.dumps(workflow))
    return root


class Server:
    """``workflow serve`` in a subprocess, its log in a file (a pipe could fill up)."""

    def __init__(self, root: Path, *args: str):
        self.log = root / "serve.log"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "jupyter_workflows", "serve", "--port", "0", *args],
            cwd=root,
            stdout=open(self.log, "w"),  # noqa: SIM115 - the child owns it
            stderr=subprocess.STDOUT,
            env={**os.environ, "BENCH_SECRET": SECRET},
        )
        deadline = time.monotonic() + 20
        while "listening on " not in (text := self.log.read_text()):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError(f"workflow serve did not start:\n{text}")
            time.sleep(0.05)
        self.url = text.split("listening on ")[1].split()[0]

    def stop(self) -> tuple[int, float]:
        started = time.perf_counter()
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(120)
        return code, time.perf_counter() - started


def request(n: int) -> tuple[bytes, dict[str, str]]:
    body = json.dumps({"ref": "refs/heads/main", "n": n, "pad": "x" * 2000}).encode()
    headers = {
        "Content-Type": "application/json",
        "X-GitHub-Event": "push",
        "X-GitHub-Delivery": str(uuid.uuid4()),
        "X-Hub-Signature-256": sign(SECRET, body),
    }
    return body, headers


def judge(status: int, headers: Any, body: bytes, took: float) -> Result:
    if status == 503 and "retry-after" not in {k.lower() for k in headers}:
        return "503 without Retry-After", took, None
    ident = json.loads(body).get("execution_id") if status == 202 else None
    return status, took, ident


async def raw_load(url: str, count: int, clients: int, pace: float = 0.0) -> list[Result]:
    """``count`` POSTs over ``clients`` keep-alive connections, by a minimal HTTP/1.1 client;
    each connection waits ``pace`` seconds between its requests."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    numbers = iter(range(count))
    results: list[Result] = []

    async def connection() -> None:
        reader, writer = await asyncio.open_connection(host, port)
        for n in numbers:
            body, headers = request(n)
            lines = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
            head = f"POST {HOOK} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {len(body)}\r\n"
            started = time.perf_counter()
            writer.write((head + lines + "\r\n").encode() + body)
            try:
                status_line = await reader.readline()
                answer: dict[str, str] = {}
                while (line := await reader.readline()) not in (b"\r\n", b""):
                    name, _, value = line.decode("latin-1").partition(":")
                    answer[name.strip().lower()] = value.strip()
                payload = await reader.readexactly(int(answer.get("content-length", "0")))
                status = int(status_line.split()[1])
            except (OSError, asyncio.IncompleteReadError, IndexError, ValueError) as exc:
                results.append((type(exc).__name__, time.perf_counter() - started, None))
                writer.close()
                reader, writer = await asyncio.open_connection(host, port)
                continue
            results.append(judge(status, answer, payload, time.perf_counter() - started))
            await asyncio.sleep(pace)
        writer.close()

    await asyncio.gather(*(connection() for _ in range(clients)))
    return results


async def httpx_load(url: str, count: int, clients: int) -> list[Result]:
    """The same with httpx.AsyncClient, ``clients`` requests in flight."""
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as client:
        gate = asyncio.Semaphore(clients)

        async def one(n: int) -> Result:
            body, headers = request(n)
            async with gate:
                started = time.perf_counter()
                try:
                    answer = await client.post(HOOK, content=body, headers=headers)
                except httpx.HTTPError as exc:
                    return type(exc).__name__, time.perf_counter() - started, None
                took = time.perf_counter() - started
            return judge(answer.status_code, answer.headers, answer.content, took)

        return list(await asyncio.gather(*(one(n) for n in range(count))))


def check_recorded(root: Path, accepted: list[str]) -> str:
    """Every accepted id has an execution in the store (a run or a recorded cancellation)."""
    store = ExecutionStore(default_store_path(root))
    rows = {r.id: r.status for r in store.history(limit=None)}
    missing = [i for i in accepted if i not in rows]
    states = Counter(str(rows[i]) for i in accepted if i in rows)
    return f"recorded {len(accepted) - len(missing)}/{len(accepted)} {dict(states)}"


@dataclass
class Phase:
    statuses: Counter[int | str]
    median_ms: float
    p95_ms: float
    max_ms: float
    rate: float
    exit: int
    stop_s: float
    all_recorded: bool

    @property
    def clean(self) -> bool:
        return set(self.statuses) <= {202, 503} and self.exit == 0 and self.all_recorded


def phase(name: str, args: list[str], run: Load) -> Phase:
    root = make_project()
    server = Server(root, *args)
    started = time.perf_counter()
    results = asyncio.run(run(server.url))
    elapsed = time.perf_counter() - started
    assert httpx.get(server.url + "/health", timeout=10).json()["status"] == "ok"
    code, stop_time = server.stop()
    times = sorted(r[1] for r in results)
    accepted = [r[2] for r in results if r[2]]
    recorded = check_recorded(root, accepted)
    result = Phase(
        statuses=Counter(r[0] for r in results),
        median_ms=statistics.median(times) * 1000,
        p95_ms=times[int(len(times) * 0.95) - 1] * 1000,
        max_ms=times[-1] * 1000,
        rate=len(results) / elapsed,
        exit=code,
        stop_s=stop_time,
        all_recorded=recorded.startswith(f"recorded {len(accepted)}/"),
    )
    print(
        f"  {name}: {dict(result.statuses)}  median {result.median_ms:.1f} ms  "
        f"p95 {result.p95_ms:.1f} ms  max {result.max_ms:.1f} ms  {result.rate:.0f} req/s  "
        f"| exit {code} after SIGTERM in {stop_time:.2f}s, {recorded}",
        flush=True,
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--sequential", type=int, default=300)
    parser.add_argument("--pace", type=float, default=0.01, help="Pause between sequential ones.")
    args = parser.parse_args()
    queued = ["--concurrency", "4", "--max-waiting", "10000"]
    bounded = ["--concurrency", "4", "--max-waiting", "100"]
    phases: dict[str, list[Phase]] = {"latency": [], "raw": [], "httpx": []}
    for n in range(args.repeat):
        print(f"repeat {n + 1}/{args.repeat}", flush=True)
        phases["latency"].append(
            phase(
                f"{args.sequential} one by one",
                queued,
                lambda url: raw_load(url, args.sequential, 1, args.pace),
            )
        )
        phases["raw"].append(
            phase(
                f"{args.requests} over {args.clients} raw connections",
                bounded,
                lambda url: raw_load(url, args.requests, args.clients),
            )
        )
        phases["httpx"].append(
            phase(
                f"{args.requests} from httpx, {args.clients} in flight",
                bounded,
                lambda url: httpx_load(url, args.requests, args.clients),
            )
        )
    med = statistics.median
    print("medians over the repeats:")
    for name, runs in phases.items():
        accepted = med(p.statuses.get(202, 0) / sum(p.statuses.values()) for p in runs)
        print(
            f"  {name:8s} median {med(p.median_ms for p in runs):6.1f} ms  "
            f"p95 {med(p.p95_ms for p in runs):6.1f} ms  {med(p.rate for p in runs):5.0f} req/s  "
            f"accepted {accepted:.3f}  SIGTERM->exit {med(p.stop_s for p in runs):.2f}s  "
            f"clean (only 202/503, exit 0, all recorded): {all(p.clean for p in runs)}"
        )


if __name__ == "__main__":
    main()
