"""Chaos run: two real `bankbot serve` replicas (scripted models, tests/serve_scripted.py) on one fresh PostgreSQL
database, reached through a TCP proxy process that can cut it, with the fake Slack Web API in this process.
Each signed event goes to either replica at random (no load balancer); an event a replica cannot take (it is
down) is retried on the other with X-Slack-Retry-Num, as Slack would.

Scenarios, in order: a) duplicate deliveries, b) the database down for 5 s, c) a model that hangs or raises,
d) kill -9 of one replica, e) SIGTERM of one replica, f) kill -9 of both replicas mid-burst, then one restarted.
Per scenario it prints the answers delivered against those expected, duplicate answers, request rows lost and
the time to recover; d and f also print answered against acknowledged (the questions a killed replica had
acknowledged are taken over by the other's sweeper, or by the restarted replica's start-up sweep), and f the
questions answered although their ack never arrived (claimed just before the kill). Leases are
shorter here (CLAIM_LEASE_S=10, SWEEP_INTERVAL_S=1) so a take-over happens within seconds. Everything is on 127.0.0.1,
every wait is bounded, and the database is dropped at the end.
Usage: python benchmarks/chaos.py [--events 500] [--seed 1] [--pg 127.0.0.1:5432]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import signal
import sys
import tempfile
import time
import uuid
from pathlib import Path

import aiohttp
import asyncpg

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.chaos_parts import Traffic, count_rows, wait_until  # noqa: E402
from storage.database import Database  # noqa: E402
from tests.fake_slack import FakeSlack  # noqa: E402
from tests.serve_helpers import ServerProcess, start_server  # noqa: E402
from tests.slack_helpers import SECRET  # noqa: E402

OUTAGE_S = 5.0


async def start_proxy(pg: str) -> tuple[asyncio.subprocess.Process, int]:
    proxy = await asyncio.create_subprocess_exec(sys.executable, "-m", "tests.tcp_proxy", "--listen", "0",
                                                 "--target", pg, cwd=REPO, stdout=asyncio.subprocess.PIPE)
    banner = (await asyncio.wait_for(proxy.stdout.readline(), 20)).decode()
    return proxy, int(banner.split()[1].rpartition(":")[2])


class Chaos:
    def __init__(self, http: aiohttp.ClientSession, fake: FakeSlack, workdir: Path, env: dict[str, str],
                 db_url: str, proxy: asyncio.subprocess.Process, rng: random.Random):
        self.http, self.fake, self.workdir, self.env = http, fake, workdir, env
        self.db_url, self.proxy, self.rng = db_url, proxy, rng
        self.replicas: dict[str, ServerProcess] = {}
        self.results: list[dict] = []

    async def start(self, name: str, port: int | None = None) -> float:
        started = time.monotonic()
        self.replicas[name] = await start_server(self.workdir, name, env=self.env, port=port)
        await self.replicas[name].wait_healthy(self.http)
        return time.monotonic() - started

    def traffic(self, channel: str) -> Traffic:
        return Traffic(self.http, self.fake, self.replicas, channel, self.rng)

    async def settle(self, traffic: Traffic, rows_before: int, within_s: float = 90.0) -> tuple[int, float]:
        """Wait for every acked event's answer and every replica's empty request-log buffer; (rows, seconds)."""
        started = time.monotonic()
        await wait_until(lambda: traffic.answered_acked() >= len(traffic.acked), within_s)
        await asyncio.sleep(1.0)  # a duplicate answer would be posted by now
        await wait_until(self._buffers_empty, within_s)
        return await count_rows(self.db_url) - rows_before, time.monotonic() - started

    async def _buffers_empty(self) -> bool:
        for replica in self.alive():
            if await replica.metric(self.http, "bankbot_request_log_pending") > 0:
                return False
        return True

    def alive(self) -> list[ServerProcess]:
        return [r for r in self.replicas.values() if r.process.returncode is None]

    async def unclaimed(self) -> int:
        return int(sum([await r.metric(self.http, "bankbot_slack_unclaimed_answers_total") for r in self.alive()]))

    def report(self, name: str, traffic: Traffic, rows: int, recover_s: float | None, **notes) -> None:
        answered, duplicates = traffic.answered(), traffic.duplicate_answers()
        result = {"scenario": name, "events": traffic.sent, "acked": len(traffic.acked), "answered": answered,
                  "duplicates": duplicates, "rows_stored": rows, "rows_lost": answered + duplicates - rows,
                  "recover_s": recover_s} | notes
        self.results.append(result)
        recover = f"{recover_s:.1f} s" if recover_s is not None else "-"
        extra = "; ".join(f"{k}={v}" for k, v in notes.items())
        print(f"{name}: answers {answered}/{traffic.sent} expected ({len(traffic.acked)} acked), duplicate answers "
              f"{duplicates}, request rows lost {result['rows_lost']} ({rows} stored), time to recover {recover}"
              + (f"; {extra}" if extra else ""), flush=True)

    # -- scenarios ------------------------------------------------------------------------------------

    async def duplicates(self, n: int) -> None:
        rows0, traffic = await count_rows(self.db_url), self.traffic("C0DUPES")
        await traffic.run(n, rate=150, duplicate_share=0.2)
        rows, took = await self.settle(traffic, rows0)
        self.report("a. 20% delivered twice", traffic, rows, None, duplicate_deliveries=traffic.duplicates_sent,
                    settle_s=round(took, 1))

    async def database_outage(self, n: int) -> None:
        rows0, unclaimed0, traffic = await count_rows(self.db_url), await self.unclaimed(), self.traffic("C0OUTAGE")
        recovered: list[float] = []

        async def outage() -> None:
            self.proxy.send_signal(signal.SIGUSR1)
            await asyncio.sleep(OUTAGE_S)
            backlog = traffic.answered()  # rows of the answers given so far, most of them buffered
            self.proxy.send_signal(signal.SIGUSR2)
            restored = time.monotonic()

            async def backlog_written() -> bool:
                return await count_rows(self.db_url) - rows0 >= backlog

            if await wait_until(backlog_written, 60):
                recovered.append(time.monotonic() - restored)

        await traffic.run(n, rate=50, actions={n // 5: outage})
        rows, _ = await self.settle(traffic, rows0)
        self.report(f"b. database down {OUTAGE_S:.0f} s", traffic, rows, recovered[0] if recovered else None,
                    answered_unclaimed=await self.unclaimed() - unclaimed0)

    async def bad_models(self, n: int) -> None:
        rows0, traffic = await count_rows(self.db_url), self.traffic("C0MODELS")
        await traffic.run(n, rate=40, markers=("", "[hang]", "[raise]"))
        rows, took = await self.settle(traffic, rows0)
        by_fallback = sum(1 for p in traffic.posts() if p["text"].startswith("gemini answers:"))
        hung = sum(1 for p in traffic.posts() if "[hang]" in p["text"] and p["text"].startswith("gemini"))
        self.report("c. model hangs/raises", traffic, rows, None, answered_by_fallback=by_fallback,
                    hangs_timed_out_then_fell_back=hung, settle_s=round(took, 1))

    async def kill_replica(self, n: int, name: str = "B") -> None:
        rows0, traffic = await count_rows(self.db_url), self.traffic("C0KILL9")
        victim, pending = self.replicas[name], []

        async def kill() -> None:
            pending.append(int(await victim.metric(self.http, "bankbot_request_log_pending")))
            victim.process.kill()
            killed_at.append(time.monotonic())
            await victim.process.wait()

        killed_at: list[float] = []
        await traffic.run(n, rate=60, actions={n // 2: kill})
        rows, _ = await self.settle(traffic, rows0, within_s=60)
        answered_s = time.monotonic() - killed_at[0]
        answered_acked = traffic.answered_acked()
        restart_s = await self.start(name, port=victim.port)
        self.report("d. kill -9 of one replica", traffic, rows, restart_s, pending_rows_at_kill=pending[0],
                    answered_of_acked=f"{answered_acked}/{len(traffic.acked)}",
                    acked_never_answered=len(traffic.acked) - answered_acked, taken_over=await self.taken_over(),
                    all_answered_s_after_kill=round(answered_s, 1))

    async def kill_both(self, n: int) -> None:
        """f: kill -9 of both replicas mid-burst; one restarts and its start-up sweep (then its sweeper) answers
        everything that was acknowledged."""
        rows0, traffic = await count_rows(self.db_url), self.traffic("C0KILLALL")
        restarted: list[float] = []

        async def kill_all() -> None:
            for replica in self.alive():
                replica.process.kill()
            await asyncio.gather(*(r.process.wait() for r in self.replicas.values()))
            started = time.monotonic()
            await self.start("A", port=self.replicas["A"].port)
            restarted.append(time.monotonic() - started)

        await traffic.run(n, rate=60, actions={n // 2: kill_all})
        await wait_until(lambda: bool(restarted), 60)
        rows, _ = await self.settle(traffic, rows0, within_s=60)
        self.report("f. kill -9 of both replicas, one restarted", traffic, rows, restarted[0],
                    answered_of_acked=f"{traffic.answered_acked()}/{len(traffic.acked)}",
                    acked_never_answered=len(traffic.acked) - traffic.answered_acked(), not_acked=traffic.failed,
                    answered_though_not_acked=traffic.answered() - traffic.answered_acked(),
                    taken_over=await self.taken_over())
        await self.start("B", port=self.replicas["B"].port)

    async def taken_over(self) -> int:
        return int(sum([await r.metric(self.http, "bankbot_claims_taken_over_total") for r in self.alive()]))

    async def sigterm_replica(self, n: int, name: str = "B") -> None:
        rows0, traffic = await count_rows(self.db_url), self.traffic("C0SIGTERM")
        victim, exits = self.replicas[name], []

        async def terminate() -> None:
            started = time.monotonic()
            exits.append(await victim.stop(within_s=15))
            exits.append(time.monotonic() - started)

        await traffic.run(n, rate=60, actions={n // 2: terminate})
        await wait_until(lambda: len(exits) == 2, 20)
        rows, _ = await self.settle(traffic, rows0)
        self.report("e. SIGTERM of one replica", traffic, rows, exits[1], exit_code=exits[0])


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=500)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--pg", default="127.0.0.1:5432", help="PostgreSQL host:port (trust auth, user postgres)")
    parser.add_argument("--scenarios", default="abcdef", help="which scenarios to run, e.g. df")
    parser.add_argument("--logs", default=None, help="keep the replicas' logs in this directory")
    args = parser.parse_args()
    name = f"bankbot_chaos_{uuid.uuid4().hex[:8]}"
    admin = f"postgresql://postgres@{args.pg}/test"
    db_url = f"postgresql+asyncpg://postgres@{args.pg}/{name}"
    conn = await asyncpg.connect(admin)
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()
    fake = await FakeSlack().start()
    proxy, proxy_port = await start_proxy(args.pg)
    code = 1
    try:
        migrate = Database(db_url)
        await migrate.upgrade()  # once, before the replicas start
        await migrate.aclose()
        env = {"DATABASE_URL": f"postgresql+asyncpg://postgres@127.0.0.1:{proxy_port}/{name}",
               "SLACK_BOT_TOKEN": "xoxb-chaos", "SLACK_SIGNING_SECRET": SECRET, "SLACK_API_URL": fake.api_url,
               "SCRIPTED_DELAY_S": "0.2", "MODEL_TIMEOUT_S": "1", "BREAKER_COOLDOWN_S": "2",
               "RATE_LIMIT_USER_PER_MIN": "0", "RATE_LIMIT_API_PER_MIN": "0", "LOG_LEVEL": "WARNING",
               "CLAIM_LEASE_S": "10", "SWEEP_INTERVAL_S": "1"}
        with tempfile.TemporaryDirectory() as tmp:
            tmp = args.logs or tmp
            async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
                chaos = Chaos(http, fake, Path(tmp), env, db_url, proxy, random.Random(args.seed))
                try:
                    await asyncio.gather(chaos.start("A"), chaos.start("B"))
                    print(f"chaos: replicas A and B on {name} through the proxy on :{proxy_port}; "
                          f"{args.events} events in scenario a", flush=True)
                    started = time.monotonic()
                    runs = {"a": (chaos.duplicates, args.events), "b": (chaos.database_outage, args.events * 3 // 4),
                            "c": (chaos.bad_models, args.events // 8), "d": (chaos.kill_replica, args.events // 2),
                            "e": (chaos.sigterm_replica, args.events // 2), "f": (chaos.kill_both, args.events // 2)}
                    for letter in args.scenarios:
                        scenario, n = runs[letter]
                        await scenario(max(n, 30 if letter == "c" else 50))
                    final = {n: await r.stop() for n, r in chaos.replicas.items() if r.process.returncode is None}
                    print(f"chaos: done in {time.monotonic() - started:.0f} s; replicas left stopped with "
                          f"SIGTERM exited {final}", flush=True)
                    complete = all(r["acked_never_answered"] == 0 for r in chaos.results if "answered_of_acked" in r)
                    code = 0 if complete and all(r["duplicates"] == 0 for r in chaos.results) else 2
                finally:
                    for replica in chaos.alive():
                        await replica.stop()
    finally:
        proxy.terminate()
        await proxy.wait()
        await fake.stop()
        conn = await asyncpg.connect(admin)
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.close()
    sys.exit(code)


if __name__ == "__main__":
    asyncio.run(main())
