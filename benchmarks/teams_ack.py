"""Teams response latency under load: 200 concurrent signed message activities at a real `bankbot serve` process.

The server runs the custom model and answers through a fake Bot Connector in this process (TEAMS_SERVICE_URL_HOSTS
allows 127.0.0.1). Tokens are RS256 JWTs signed with a key generated here; the server process is `bot.server.serve`
unchanged, started by this script in its `--serve` mode, which first points the SDK's two identity calls at that key
(the JWKS lookup and MSAL's token request, as tests/fake_connector.py does), since neither Microsoft endpoint can be
reached from a benchmark. Prints the HTTP response p50/p99 (target p99 <= 200 ms), the time until every reply is
posted, and the reply count (exactly one per activity), as medians over several runs.
Usage: python benchmarks/teams_ack.py [--model-dir models] [--events 200] [--runs 3]
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import aiohttp
from cryptography.hazmat.primitives import serialization

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.ack_load import free_port, model_dir, parse_args, post_all, report, wait_healthy  # noqa: E402
from llm import banking77  # noqa: E402
from llm.stats import percentile  # noqa: E402
from tests.fake_connector import FakeConnector, Identity  # noqa: E402
from tests.teams_helpers import SDK_ENV, activity, user  # noqa: E402

KEY_FILE = "BENCH_TEAMS_KEY_FILE"


def serve_with_test_identity() -> None:
    """The child: `bankbot serve --no-train`, its identity calls answered by the benchmark's key."""
    from bot.server import serve
    from bot.settings import load_settings

    key = serialization.load_pem_private_key(Path(os.environ[KEY_FILE]).read_bytes(), password=None)
    Identity(key=key).install(setattr)
    asyncio.run(serve(load_settings(), train=False))


def start_server(tmp: str, port: int, identity: Identity, models: Path) -> subprocess.Popen:
    key_file = Path(tmp) / "key.pem"
    key_file.write_bytes(identity.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                    serialization.NoEncryption()))
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SLACK_", "DATABASE_", "LLM_", "FALLBACK_", "CONNECTIONS__", "TEAMS_"))}
    env |= SDK_ENV | {
        "PORT": str(port), "DATABASE_URL": f"sqlite+aiosqlite:///{tmp}/bench.db", "MODEL_DIR": str(models),
        "LLM_MODEL_VERSION": "custom", "FALLBACK_ORDER": "custom", "BENCHMARK_EVERY_N": "0",
        "SHOW_MODEL_FOOTER": "true", "LOG_LEVEL": "WARNING", "BENCHMARK_LOG": f"{tmp}/benchmark.jsonl",
        "TEAMS_SERVICE_URL_HOSTS": "127.0.0.1", "BREAKER_COOLDOWN_S": "2", KEY_FILE: str(key_file),
        "PYTHONPATH": str(REPO)}
    return subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--serve"], cwd=tmp, env=env,
                            stdout=sys.stderr, stderr=sys.stderr)


def replies_in(connector: FakeConnector, conversations: set[str]) -> int:
    return sum(1 for p in connector.messages() if p.conversation in conversations)


async def one_run(http, url: str, connector: FakeConnector, identity: Identity, questions: list[str],
                  tag: str) -> tuple[float, ...]:
    bodies = [activity(q, connector.url, kind="personal", sender=user(int(f"{tag}{i:04d}")),
                       conversation=f"a:1bench{tag}-{i:04d}") for i, q in enumerate(questions)]
    token = identity.token(connector.url)  # one channel token, as Teams reuses it for an hour
    requests = [json.dumps(b).encode() for b in bodies]
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
    conversations = {b["conversation"]["id"] for b in bodies}

    latencies, all_replied_s = await post_all(
        http, url + "/api/messages", [(body, headers) for body in requests], 202, "activity refused",
        lambda: connector.wait_for(lambda c: replies_in(c, conversations) >= len(bodies), within_s=600))
    answers = sum(1 for p in connector.messages() if p.conversation in conversations and "confidence" in p.text)
    return (percentile(latencies, 50), percentile(latencies, 99), all_replied_s, replies_in(connector, conversations),
            answers)


async def main() -> None:
    args = parse_args(__doc__)
    questions = [e.text for e in banking77.load_split("test")[: args.events]]
    connector = await FakeConnector().start()
    identity = Identity()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as tmp:
        process = start_server(tmp, port, identity, model_dir(args.model_dir))
        try:
            async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
                await wait_healthy(http, url, process)
                await one_run(http, url, connector, identity, questions[:5], "9")  # warm-up: model load
                runs = []
                for run in range(args.runs):
                    await asyncio.sleep(2.5)  # past BREAKER_COOLDOWN_S
                    runs.append(await one_run(http, url, connector, identity, questions, f"{run + 1}"))
        finally:
            process.terminate()
            process.wait(timeout=30)
            await connector.stop()
    report(runs, args.events, f"Teams response latency: {args.events} concurrent signed message activities "
           "(1:1 chats), custom model", "HTTP response", "target p99", 200, "response")


if __name__ == "__main__":
    if "--serve" in sys.argv:
        serve_with_test_identity()
    else:
        asyncio.run(main())
