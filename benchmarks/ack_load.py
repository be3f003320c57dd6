"""What the Slack and the Teams latency benchmarks (slack_ack.py, teams_ack.py) share: a `bankbot serve` process
to start and wait for, the same command line, every request posted at once with its response time measured, and
the same summary of several runs."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp

REPO = Path(__file__).resolve().parent.parent

Run = tuple[float, float, float, int, int]  # p50 ms, p99 ms, all replied after s, replies, model answers


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def model_dir(path: Path) -> Path:
    """MODEL_DIR for the server: the given directory, or its parent when it is the checkpoint itself."""
    path = path.resolve()
    return path if (path / "custom").is_dir() else path.parent


async def wait_healthy(http: aiohttp.ClientSession, url: str, process: subprocess.Popen, within_s: float = 120):
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"bankbot serve exited with {process.returncode}")
        try:
            async with http.get(url + "/health") as response:
                if response.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.2)
    raise SystemExit("bankbot serve did not become healthy")


def parse_args(doc: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", type=Path, default=REPO / "models")
    parser.add_argument("--events", type=int, default=200)
    parser.add_argument("--runs", type=int, default=3)
    return parser.parse_args()


async def post_all(http: aiohttp.ClientSession, url: str, requests: list[tuple[bytes, dict]], status: int,
                   refused: str, all_replied: Callable[[], Awaitable[object]]) -> tuple[list[float], float]:
    """POST every (body, headers) to `url` at once: each response's time in ms (anything but `status` ends the
    benchmark, saying `refused`), and the seconds until `all_replied` returned, after which one more second lets
    any second reply show up."""

    async def send(body: bytes, headers: dict) -> float:
        started = time.perf_counter()
        async with http.post(url, data=body, headers=headers) as response:
            await response.read()
            if response.status != status:
                raise SystemExit(f"{refused} with HTTP {response.status}")
        return (time.perf_counter() - started) * 1000

    started = time.perf_counter()
    latencies = await asyncio.gather(*(send(b, h) for b, h in requests))
    await all_replied()
    all_replied_s = time.perf_counter() - started
    await asyncio.sleep(1.0)  # any second reply would show up here
    return list(latencies), all_replied_s


def report(runs: list[Run], events: int, title: str, label: str, target: str, target_ms: float, key: str) -> None:
    """Print the medians of `runs` (and a JSON line, `key`_p50_ms...); exit 1 unless each run had one reply per
    event."""
    p50s, p99s, totals, replies, answers = zip(*runs, strict=True)
    print(f"{title}, {len(runs)} runs (medians)")
    print(f"  {label} p50: {statistics.median(p50s):7.1f} ms   (runs: {', '.join(f'{v:.1f}' for v in p50s)})")
    print(f"  {label} p99: {statistics.median(p99s):7.1f} ms   (runs: {', '.join(f'{v:.1f}' for v in p99s)})")
    print(f"  all replies posted after: {statistics.median(totals):.2f} s   "
          f"(runs: {', '.join(f'{v:.2f}' for v in totals)})")
    print(f"  replies per run: {', '.join(map(str, replies))} (expected exactly {events} each); "
          f"of which model answers: {', '.join(map(str, answers))} (the rest: apologies or clarifying questions)")
    print(f"  load average during the runs: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"  {target} <= {target_ms:g} ms: {'met' if statistics.median(p99s) <= target_ms else 'NOT met'}")
    print(json.dumps({f"{key}_p50_ms": statistics.median(p50s), f"{key}_p99_ms": statistics.median(p99s),
                      "all_replied_s": statistics.median(totals), "replies": list(replies),
                      "answers": list(answers)}))
    if any(r != events for r in replies):
        sys.exit(1)
