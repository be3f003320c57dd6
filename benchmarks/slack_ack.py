"""Slack ack latency under load: 200 concurrent signed app_mention events at a real `bankbot serve` process.

The server runs the custom model and talks to a fake Slack Web API in this process (SLACK_API_URL).
Prints the ack latency p50/p99 (target p99 <= 100 ms) and the time until every reply is posted, as medians over
several runs, and checks that exactly one reply arrives per event.
Usage: python benchmarks/slack_ack.py [--model-dir models] [--events 200] [--runs 3]
  --model-dir: $MODEL_DIR (holding custom/) or the custom checkpoint directory itself.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from llm import banking77  # noqa: E402
from llm.stats import percentile  # noqa: E402
from tests.fake_slack import BOT_USER_ID, FakeSlack  # noqa: E402
from tests.slack_helpers import event_body, mention, signed_headers  # noqa: E402

SECRET = "benchmark-signing-secret"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def model_dir(path: Path) -> Path:
    """MODEL_DIR for the server: the given directory, or its parent when it is the checkpoint itself."""
    path = path.resolve()
    return path if (path / "custom").is_dir() else path.parent


def start_server(tmp: str, port: int, fake: FakeSlack, models: Path) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "DATABASE_", "LLM_", "FALLBACK_"))}
    env |= {"PORT": str(port), "SLACK_BOT_TOKEN": "xoxb-benchmark", "SLACK_SIGNING_SECRET": SECRET,
            "SLACK_API_URL": fake.api_url, "DATABASE_URL": f"sqlite+aiosqlite:///{tmp}/bench.db",
            "MODEL_DIR": str(models), "LLM_MODEL_VERSION": "custom", "FALLBACK_ORDER": "custom",
            "BENCHMARK_EVERY_N": "0", "SHOW_MODEL_FOOTER": "true", "LOG_LEVEL": "WARNING",
            "BENCHMARK_LOG": f"{tmp}/benchmark.jsonl",
            "BREAKER_COOLDOWN_S": "2"}  # a circuit opened by one run's overload is closed again for the next
    bankbot = Path(sys.executable).with_name("bankbot")  # the installed console script
    command = [str(bankbot)] if bankbot.exists() else [sys.executable, "-c", "from bot.cli import main; main()"]
    env["PYTHONPATH"] = str(REPO)
    return subprocess.Popen([*command, "serve", "--no-train"], cwd=tmp, env=env, stdout=sys.stderr,
                            stderr=sys.stderr)


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


def replies_in(fake: FakeSlack, threads: set[str]) -> int:
    return sum(1 for p in fake.posts() if p.get("thread_ts") in threads)


def answers_in(fake: FakeSlack, threads: set[str]) -> int:
    """Replies that are model answers (they carry the model footer), not apologies."""
    return sum(1 for p in fake.posts() if p.get("thread_ts") in threads
               and any(b.get("type") == "context" for b in p.get("blocks") or []))


async def one_run(http, url: str, fake: FakeSlack, questions: list[str], tag: str) -> tuple[float, ...]:
    events = [mention(f"<@{BOT_USER_ID}> {q}", channel="C0BENCH", ts=f"17{tag}.{i:06d}", user=f"U{tag}{i:06d}")
              for i, q in enumerate(questions)]  # 200 different people: no one hits their rate limit
    requests = []
    for i, event in enumerate(events):
        body = event_body(event, event_id=f"Ev{tag}{i:06d}")
        requests.append((body.encode(), signed_headers(body, secret=SECRET)))
    threads = {e["ts"] for e in events}

    async def send(body: bytes, headers: dict) -> float:
        started = time.perf_counter()
        async with http.post(url + "/slack/events", data=body, headers=headers) as response:
            await response.read()
            if response.status != 200:
                raise SystemExit(f"ack failed with HTTP {response.status}")
        return (time.perf_counter() - started) * 1000

    started = time.perf_counter()
    acks = await asyncio.gather(*(send(b, h) for b, h in requests))
    await fake.wait_for(lambda f: replies_in(f, threads) >= len(events), within_s=600)
    all_replied_s = time.perf_counter() - started
    await asyncio.sleep(1.0)  # any second reply would show up here
    return (percentile(acks, 50), percentile(acks, 99), all_replied_s, replies_in(fake, threads),
            answers_in(fake, threads))


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", type=Path, default=REPO / "models")
    parser.add_argument("--events", type=int, default=200)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    questions = [e.text for e in banking77.load_split("test")[: args.events]]
    fake = await FakeSlack().start()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as tmp:
        process = start_server(tmp, port, fake, model_dir(args.model_dir))
        connector = aiohttp.TCPConnector(limit=0)  # every event on its own connection, all at once
        try:
            async with aiohttp.ClientSession(connector=connector) as http:
                await wait_healthy(http, url, process)
                await one_run(http, url, fake, questions[:5], "00")  # warm-up: auth.test, model load
                runs = []
                for run in range(args.runs):
                    await asyncio.sleep(2.5)  # past BREAKER_COOLDOWN_S
                    runs.append(await one_run(http, url, fake, questions, f"{run + 1:02d}"))
        finally:
            process.terminate()
            process.wait(timeout=30)
            await fake.stop()
    p50s, p99s, totals, replies, answers = zip(*runs, strict=True)
    print(f"Slack ack latency: {args.events} concurrent signed app_mention events, custom model, "
          f"{args.runs} runs (medians)")
    print(f"  ack p50: {statistics.median(p50s):7.1f} ms   (runs: {', '.join(f'{v:.1f}' for v in p50s)})")
    print(f"  ack p99: {statistics.median(p99s):7.1f} ms   (runs: {', '.join(f'{v:.1f}' for v in p99s)})")
    print(f"  all replies posted after: {statistics.median(totals):.2f} s   "
          f"(runs: {', '.join(f'{v:.2f}' for v in totals)})")
    print(f"  replies per run: {', '.join(map(str, replies))} (expected exactly {args.events} each); "
          f"of which model answers: {', '.join(map(str, answers))} (the rest: apologies)")
    print(f"  load average during the runs: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"  target ack p99 <= 100 ms: {'met' if statistics.median(p99s) <= 100 else 'NOT met'}")
    print(json.dumps({"ack_p50_ms": statistics.median(p50s), "ack_p99_ms": statistics.median(p99s),
                      "all_replied_s": statistics.median(totals), "replies": list(replies),
                      "answers": list(answers)}))
    if any(r != args.events for r in replies):
        sys.exit(1)


if __name__ == "__main__":
    asyncio.run(main())
