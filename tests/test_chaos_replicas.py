"""Two replicas (two runtimes, two Database engines, two web apps) on one PostgreSQL behind no load balancer:
Slack delivers each event to either, some twice; each event is answered once. While the database is down,
the de-duplication claim fails open: the event is answered, counted as unclaimed, and its row lands later."""

from __future__ import annotations

import asyncio
import random
from contextlib import asynccontextmanager

import aiohttp
from aiohttp.test_utils import TestServer
from sqlalchemy import func, select

from bot.runtime import Runtime
from bot.server import SLACK_WORK, build_web_app
from bot.settings import Settings
from storage.database import Database
from storage.models import RequestRecord
from tests.fake_slack import BOT_USER_ID, FakeSlack
from tests.scripted import Scripted, ScriptedAdapter, builders
from tests.slack_helpers import SECRET, event_body, mention, signed_headers
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
    migrated = Database(postgres_url)
    await migrated.upgrade()
    await migrated.truncate_all()
    await migrated.aclose()
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
    migrated = Database(postgres_url)
    await migrated.upgrade()
    await migrated.truncate_all()
    await migrated.aclose()
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
