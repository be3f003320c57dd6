"""Slack ack latency under load: 200 concurrent signed app_mention events at a real `bankbot serve` process.

The server runs the custom model and talks to a fake Slack Web API in this process (SLACK_API_URL).
Prints the ack latency p50/p99 (target p99 <= 100 ms) and the time until every reply is posted, as medians over
several runs, and checks that exactly one reply arrives per event.
Usage: python benchmarks/slack_ack.py [--model-dir models] [--events 200] [--runs 3]
  --model-dir: $MODEL_DIR (holding custom/) or the custom checkpoint directory itself.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import aiohttp

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.ack_load import free_port, model_dir, parse_args, post_all, report, wait_healthy  # noqa: E402
from llm import banking77  # noqa: E402
from llm.stats import percentile  # noqa: E402
from tests.fake_slack import BOT_USER_ID, FakeSlack  # noqa: E402
from tests.slack_helpers import event_body, mention, signed_headers  # noqa: E402

SECRET = "benchmark-signing-secret"


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


def replies_in(fake: FakeSlack, threads: set[str]) -> int:
    return sum(1 for p in fake.posts() if p.get("thread_ts") in threads)


def answers_in(fake: FakeSlack, threads: set[str]) -> int:
    """Replies that are model answers (they carry the model footer), not apologies or clarifying questions."""
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

    acks, all_replied_s = await post_all(
        http, url + "/slack/events", requests, 200, "ack failed",
        lambda: fake.wait_for(lambda f: replies_in(f, threads) >= len(events), within_s=600))
    return (percentile(acks, 50), percentile(acks, 99), all_replied_s, replies_in(fake, threads),
            answers_in(fake, threads))


async def main() -> None:
    args = parse_args(__doc__)
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
    report(runs, args.events, f"Slack ack latency: {args.events} concurrent signed app_mention events, custom model",
           "ack", "target ack p99", 100, "ack")


if __name__ == "__main__":
    asyncio.run(main())
