"""Load on POST /api/v1/chat: requests per second and latency p99, as the median of several runs.

Each run starts the server as a real subprocess (the bankbot web app from build_web_app, the JSON
request log written to a file, request rows stored in SQLite) and drives it from this process with keep-alive
HTTP/1.1 connections, closed loop. After each run it checks that every request was counted by /metrics and
stored as a request row.

    python benchmarks/api_load.py                          # zero-latency model
    python benchmarks/api_load.py --model custom --model-dir models
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

FALLBACK_MESSAGES = ["Where is my new card?", "My top-up failed, why?", "How do I change my PIN?",
                     "I was charged twice for one purchase", "Can I get a virtual card?"]


# -- the server (child process) ------------------------------------------------------------------------


def instant_builders():
    """A zero-latency "custom" model: the scripted test model, answering at once with a fixed reply."""
    from tests.scripted import Scripted, ScriptedAdapter, builders

    return builders(ScriptedAdapter("custom", default=Scripted("Your card is on its way.", "card_arrival", 1.0)))


async def serve(args: argparse.Namespace, log_stream) -> None:
    from aiohttp import web

    from bot.json_logging import configure_logging
    from bot.runtime import Runtime
    from bot.server import build_web_app
    from bot.settings import Settings

    configure_logging("INFO", log_stream)
    settings = Settings(llm_model_version=args.model, fallback_order=args.model, database_url=args.database_url,
                        benchmark_every_n=args.benchmark_every,
                        rate_limit_api_per_min=0,  # the limiter is not what this measures
                        **({"model_dir": args.model_dir}
                                                                    if args.model_dir else {}))
    builders = instant_builders() if args.instant else None
    runtime = await Runtime.create(settings, builders=builders)
    await runtime.factory.get(runtime.pipeline.active_model)  # load the model before the clock starts
    app = build_web_app(runtime)
    runner = web.AppRunner(app, access_log=None)  # the JSON request log is the access log
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    print(f"PORT {runner.addresses[0][1]}", flush=True)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await runner.cleanup()
    await runtime.aclose()


# -- the load generator (this process) -----------------------------------------------------------------


@dataclass
class RunResult:
    requests: int
    errors: int
    seconds: float
    latencies_s: list[float]

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    @property
    def p99_ms(self) -> float:
        ordered = sorted(self.latencies_s)
        return ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))] * 1000

    @property
    def p50_ms(self) -> float:
        return statistics.median(self.latencies_s) * 1000


def encode_requests(port: int, messages: list[str]) -> list[bytes]:
    requests = []
    for message in messages:
        body = json.dumps({"message": message}).encode()
        head = (f"POST /api/v1/chat HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n").encode()
        requests.append(head + body)
    return requests


async def connection(port: int, requests: list[bytes], offset: int, warm_until: float, stop_at: float,
                     result: RunResult) -> int:
    """One keep-alive connection, one request at a time; returns the requests it sent in all."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    sent = 0
    try:
        while (now := time.perf_counter()) < stop_at:
            writer.write(requests[(offset + sent) % len(requests)])
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(head[head.lower().index(b"content-length:") + 15:].split(b"\r\n", 1)[0])
            body = await reader.readexactly(length)
            sent += 1
            if now >= warm_until:
                result.latencies_s.append(time.perf_counter() - now)
                result.requests += 1
                if head[9:12] != b"200" or b'"intent"' not in body:
                    result.errors += 1
    finally:
        writer.close()
    return sent


async def drive(port: int, messages: list[str], concurrency: int, warmup_s: float, duration_s: float):
    requests = encode_requests(port, messages)
    result = RunResult(0, 0, duration_s, [])
    start = time.perf_counter()
    warm_until, stop_at = start + warmup_s, start + warmup_s + duration_s
    sent = await asyncio.gather(*(connection(port, requests, i * 7, warm_until, stop_at, result)
                                  for i in range(concurrency)))
    result.seconds = min(duration_s, time.perf_counter() - warm_until)
    return result, sum(sent)


async def scrape_requests_total(port: int) -> float:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n".encode())
    text = (await reader.read()).decode()
    writer.close()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("bankbot_requests_total{"))


def one_run(args: argparse.Namespace, messages: list[str], workdir: Path, index: int) -> dict:
    db_path = workdir / f"run{index}.db"
    log_file = workdir / f"run{index}.log"
    command = [sys.executable, __file__, "--serve", "--model", args.model, "--database-url",
               f"sqlite+aiosqlite:///{db_path}", "--log-file", str(log_file),
               "--benchmark-every", str(args.benchmark_every)]
    if args.model_dir:
        command += ["--model-dir", str(args.model_dir)]
    if args.model == "instant":
        command[command.index("--model") + 1] = "custom"
        command.append("--instant")
    env = os.environ | {"PYTHONPATH": str(REPO)}
    server = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env, cwd=workdir)
    try:
        line = server.stdout.readline()
        if not line.startswith("PORT "):
            raise SystemExit(f"the server did not start (exit {server.wait()}); see {log_file}")
        port = int(line.split()[1])

        async def load():
            result, sent = await drive(port, messages, args.concurrency, args.warmup, args.duration)
            return result, sent, await scrape_requests_total(port)

        result, sent, counted = asyncio.run(load())
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(60)
    with sqlite3.connect(db_path) as conn:
        stored = conn.execute("SELECT count(*) FROM requests").fetchone()[0]
    log_lines = sum(1 for line in log_file.open() if '"logger": "bankbot.requests"' in line)
    return {"rps": result.rps, "p50_ms": result.p50_ms, "p99_ms": result.p99_ms, "errors": result.errors,
            "sent": sent, "counted": counted, "stored": stored, "logged": log_lines}


def load_messages(limit: int = 500) -> list[str]:
    try:
        from llm import banking77

        return [example.text for example in banking77.load_split("test")[:limit]]
    except Exception:  # noqa: BLE001 - without Banking77, a few fixed questions do
        return FALLBACK_MESSAGES


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="instant", help="instant (zero-latency), custom, qlora or gemini")
    parser.add_argument("--model-dir", type=Path, help="MODEL_DIR for the server (checkpoints)")
    parser.add_argument("--concurrency", type=int, default=32, help="keep-alive connections")
    parser.add_argument("--duration", type=float, default=5.0, help="measured seconds per run")
    parser.add_argument("--warmup", type=float, default=1.0, help="unmeasured seconds before each run")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--benchmark-every", type=int, default=0,
                        help="BENCHMARK_EVERY_N of the server (0: no periodic benchmark during the load)")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--instant", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--database-url", help=argparse.SUPPRESS)
    parser.add_argument("--log-file", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        with open(args.log_file, "a", encoding="utf-8") as log_stream:
            asyncio.run(serve(args, log_stream))
        return
    if args.model_dir:
        args.model_dir = args.model_dir.resolve()
    messages = load_messages()
    print(f"POST /api/v1/chat, model {args.model}, {args.concurrency} connections, {args.runs} runs of "
          f"{args.duration:g} s (+{args.warmup:g} s warm-up), {os.cpu_count()} CPUs")
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for index in range(args.runs):
            run = one_run(args, messages, Path(tmp), index)
            runs.append(run)
            complete = run["counted"] == run["sent"] == run["stored"] == run["logged"]
            print(f"  run {index + 1}: {run['rps']:7.0f} req/s  p50 {run['p50_ms']:6.2f} ms  "
                  f"p99 {run['p99_ms']:6.2f} ms  errors {run['errors']}  sent {run['sent']}, "
                  f"in /metrics {run['counted']:.0f}, "
                  f"rows {run['stored']}, log lines {run['logged']}{'' if complete else '  MISMATCH'}")
    print(f"median: {statistics.median(r['rps'] for r in runs):.0f} requests/s, "
          f"p99 {statistics.median(r['p99_ms'] for r in runs):.2f} ms, "
          f"p50 {statistics.median(r['p50_ms'] for r in runs):.2f} ms")


if __name__ == "__main__":
    main()
