"""Two replicas (two runtimes, two Database engines, two web apps) on one PostgreSQL behind no load balancer:
Slack delivers each event to either, some twice; each event is answered once. While the database is down,
the de-duplication claim fails open: the event is answered, counted as unclaimed, and its row lands later.
A replica process killed with SIGKILL while its answers are in flight leaves them to the other replica (on
PostgreSQL) or to itself restarted (on SQLite): each is answered once."""

from __future__ import annotations

import asyncio
import json
import random
import time
from contextlib import asynccontextmanager

import aiohttp
from aiohttp.test_utils import TestServer
from sqlalchemy import func, select

from bot.conversation import durable
from bot.runtime import Runtime
from bot.server import SLACK_WORK, build_web_app
from bot.settings import Settings
from storage.database import Database
from storage.models import ProcessedEvent, RequestRecord
from tests.fake_slack import BOT_USER_ID, FakeSlack
from tests.scripted import Scripted, ScriptedAdapter, builders
from tests.serve_helpers import start_server
from tests.slack_helpers import SECRET, event_body, mention, signed_headers
from tests.storage_helpers import migrated_database
from tests.tcp_proxy import TcpProxy


async def stored_rows(url: str) -> int:
    db = Database(url)
    try:
        async with db.engine.connect() as conn:
            return (await conn.execute(select(func.count()).select_from(RequestRecord))).scalar_one()
    finally:
        await db.aclose()


@asynccontextmanager
async def replica(database_url: str, fake: FakeSlack, delay_s: float = 0.05):
    """One replica: its own runtime, engine and web server, on scripted models that take `delay_s`."""
    models = builders(ScriptedAdapter("custom", default=Scripted("card news", delay_s=delay_s)),
                      ScriptedAdapter("gemini", default=Scripted("fallback news")))
    settings = Settings(database_url=database_url, slack_bot_token="xoxb-test", slack_signing_secret=SECRET,
                        slack_api_url=fake.api_url, llm_model_version="custom", fallback_order="custom,gemini",
                        benchmark_every_n=0, rate_limit_user_per_min=0, rate_limit_api_per_min=0)
    runtime = await Runtime.create(settings, builders=models)
    runtime.db.request_log.flush_interval_s = 0.05
    app = build_web_app(runtime)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield str(server.make_url("/slack/events")), app[SLACK_WORK], runtime
    finally:
        await server.close()  # runs the app's cleanup: waits for the answers in flight
        await runtime.aclose()


async def deliver(http: aiohttp.ClientSession, url: str, body: str, retry: int | None = None) -> int:
    async with http.post(url, data=body.encode(), headers=signed_headers(body, retry=retry)) as response:
        return response.status


def replies_per_thread(fake: FakeSlack) -> dict[str, int]:
    counts: dict[str, int] = {}
    for post in fake.posts():
        counts[post["thread_ts"]] = counts.get(post["thread_ts"], 0) + 1
    return counts


async def test_events_delivered_to_both_replicas_are_answered_once(postgres_url):
    async with migrated_database(postgres_url):  # migrated and emptied
        pass
    fake = await FakeSlack().start()
    rng = random.Random(7)
    try:
        async with (replica(postgres_url, fake) as (url_a, work_a, _), replica(postgres_url, fake) as (url_b, *_),
                    aiohttp.ClientSession() as http):
            events = [mention(f"<@{BOT_USER_ID}> card {i}", channel="C0DUP") for i in range(40)]
            bodies = [event_body(e) for e in events]
            deliveries = []
            for i, body in enumerate(bodies):
                first, second = rng.sample([url_a, url_b], 2)
                deliveries.append(deliver(http, first, body))
                if i % 2 == 0:  # half the events twice at once, to the two replicas; half of those as retries
                    deliveries.append(deliver(http, second, body, retry=1 if i % 4 == 0 else None))
            assert set(await asyncio.gather(*deliveries)) == {200}
            threads = {e["ts"] for e in events}
            await fake.wait_for(lambda f: set(replies_per_thread(f)) == threads)
        # Both servers are closed: every listener has finished (cleanup waits for them) and rows are flushed.
        assert replies_per_thread(fake) == dict.fromkeys(threads, 1)
        assert await stored_rows(postgres_url) == len(events)
        assert work_a.unclaimed_answers == 0
    finally:
        await fake.stop()


async def test_while_the_database_is_down_events_are_answered_unclaimed_and_rows_land_later(postgres_url):
    async with migrated_database(postgres_url):  # migrated and emptied
        pass
    fake = await FakeSlack().start()
    try:
        async with (TcpProxy() as proxy, replica(proxy.rewrite(postgres_url), fake) as (url, work, runtime),
                    aiohttp.ClientSession() as http):
            before = mention(f"<@{BOT_USER_ID}> before the outage", channel="C0OUT")
            assert await deliver(http, url, event_body(before)) == 200
            await fake.wait_for(lambda f: len(f.posts()) == 1)
            await proxy.cut()
            during = [mention(f"<@{BOT_USER_ID}> during the outage {i}", channel="C0OUT") for i in range(3)]
            assert [await deliver(http, url, event_body(e)) for e in during] == [200] * 3
            await fake.wait_for(lambda f: len(f.posts()) == 4)
            assert work.unclaimed_answers == 3
            assert runtime.db.request_log.pending >= 3 and await stored_rows(postgres_url) <= 1
            await proxy.restore()
            for _ in range(400):  # the writer backs off while the database is down; bounded at 20 s
                if runtime.db.request_log.pending == 0:
                    break
                await asyncio.sleep(0.05)
        assert replies_per_thread(fake) == {e["ts"]: 1 for e in [before, *during]}
        assert await stored_rows(postgres_url) == 4
    finally:
        await fake.stop()


async def test_a_claim_still_being_written_at_the_ack_is_waited_for_and_a_second_delivery_gets_no_answer(
        postgres_url, monkeypatch):
    """A database too slow for the ack's 1 s bound (held back by the proxy): both deliveries of one event are
    acknowledged with their claims still being written; once the database answers, the claim that landed first
    is answered and the other delivery is not: one reply, nothing answered unclaimed."""
    monkeypatch.setattr(durable, "SETTLE_S", 60.0)  # however slow this machine is, the claims settle in time
    async with migrated_database(postgres_url):  # migrated and emptied
        pass
    fake = await FakeSlack().start()
    try:
        async with (TcpProxy() as proxy, replica(proxy.rewrite(postgres_url), fake) as (url, work, runtime),
                    aiohttp.ClientSession() as http):
            warm = mention(f"<@{BOT_USER_ID}> hello", channel="C0WARM")  # started: migrated, swept once
            assert await deliver(http, url, event_body(warm)) == 200
            await fake.wait_for(lambda f: len(f.posts()) == 1)
            proxy.black_hole()
            event = mention(f"<@{BOT_USER_ID}> where is my card?", channel="C0SLOW")
            body = event_body(event)
            assert await asyncio.gather(deliver(http, url, body), deliver(http, url, body, retry=1)) == [200, 200]
            assert replies_per_thread(fake) == {warm["ts"]: 1}  # acknowledged; the answers wait for their claims
            await proxy.restore()
            await fake.wait_for(lambda f: len(f.posts()) == 2, within_s=60)
            while work.in_flight:
                await asyncio.wait(set(work.tasks), timeout=60)
            assert replies_per_thread(fake) == {warm["ts"]: 1, event["ts"]: 1}
            assert work.unclaimed_answers == 0
            assert (await runtime.db.get_claim(json.loads(body)["event_id"])).state == "answered"
    finally:
        await fake.stop()


# -- a replica killed with SIGKILL while its answers are in flight ---------------------------------------------

KILL_ENV = {"SLACK_BOT_TOKEN": "xoxb-test", "SLACK_SIGNING_SECRET": SECRET, "RATE_LIMIT_USER_PER_MIN": "0",
            "RATE_LIMIT_API_PER_MIN": "0", "LOG_LEVEL": "WARNING", "CLAIM_LEASE_S": "1", "SWEEP_INTERVAL_S": "0.2"}
STUCK = {"FALLBACK_ORDER": "custom", "MODEL_TIMEOUT_S": "120"}  # "[hang]" questions: in flight until killed
ANSWERS = {"FALLBACK_ORDER": "custom,gemini", "MODEL_TIMEOUT_S": "1"}  # "[hang]": custom times out, gemini answers


async def open_claims(url: str) -> int:
    db = Database(url)
    try:
        async with db.engine.connect() as conn:
            return (await conn.execute(select(func.count()).select_from(ProcessedEvent)
                                       .where(ProcessedEvent.state == "answering"))).scalar_one()
    finally:
        await db.aclose()


async def kill_mid_answer(url: str, workdir, *, restart_same: bool) -> None:
    """Replica A acknowledges 8 questions, starts answering them and is killed with SIGKILL; replica B (or A
    restarted, on SQLite) answers every one of them, once."""
    async with migrated_database(url):  # migrated and emptied
        pass
    fake = await FakeSlack().start()
    env = KILL_ENV | {"DATABASE_URL": url, "SLACK_API_URL": fake.api_url}
    replicas = []
    try:
        async with aiohttp.ClientSession() as http:
            a = await start_server(workdir, "A", env=env | STUCK)
            replicas.append(a)
            await a.wait_healthy(http)
            if not restart_same:
                replicas.append(b := await start_server(workdir, "B", env=env | ANSWERS))
                await b.wait_healthy(http)
            events = [mention(f"<@{BOT_USER_ID}> card {i} [hang]", channel="C0KILL") for i in range(8)]
            assert {await deliver(http, a.url + "/slack/events", event_body(e)) for e in events} == {200}
            deadline = time.monotonic() + 30
            while await open_claims(url) < len(events):  # acknowledged, claimed, the model working on each
                assert time.monotonic() < deadline, "replica A did not start answering"
                await asyncio.sleep(0.05)
            a.process.kill()
            await a.process.wait()
            assert fake.posts() == []
            if restart_same:
                replicas.append(b := await start_server(workdir, "A2", env=env | ANSWERS, port=a.port))
                await b.wait_healthy(http)
            threads = {e["ts"] for e in events}
            await fake.wait_for(lambda f: set(replies_per_thread(f)) == threads, within_s=60)
            assert await b.metric(http, "bankbot_claims_taken_over_total") == len(events)
            assert await b.stop() == 0  # its sweeper ran on; nothing more was posted meanwhile
        assert replies_per_thread(fake) == dict.fromkeys(threads, 1)
        assert all(p["text"].startswith("gemini answers:") for p in fake.posts())
        assert await open_claims(url) == 0
    finally:
        for replica in replicas:
            await replica.stop()
        await fake.stop()


async def test_a_replica_killed_mid_answer_leaves_every_question_to_the_other_once(postgres_url, tmp_path):
    await kill_mid_answer(postgres_url, tmp_path, restart_same=False)


async def test_a_single_replica_killed_mid_answer_answers_everything_once_restarted(tmp_path):
    await kill_mid_answer(f"sqlite+aiosqlite:///{tmp_path / 'kill.db'}", tmp_path, restart_same=True)
