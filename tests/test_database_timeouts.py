"""Bounded waits on the database: a PostgreSQL that accepts connections and then never answers (the TCP proxy
black-holes them) costs a request path call at most its timeout, and the call fails open; nothing is left
broken once the database answers again."""

from __future__ import annotations

import asyncio
import time

import aiohttp

from bot.rate_limit import RateLimiter
from storage.database import Database
from tests.fake_slack import BOT_USER_ID, FakeSlack
from tests.slack_helpers import event_body, mention
from tests.storage_helpers import migrated_database
from tests.tcp_proxy import TcpProxy
from tests.test_chaos_replicas import deliver, replica, replies_per_thread

# The outer deadlines below only stop a hung test; they sit far above the bound under test (0.2 s or 1 s) and
# below what an unbounded call would wait (10 s to connect, 30 s per statement).
HUNG_S = 8.0


async def test_claim_event_times_out_on_a_black_hole_and_works_again_after(postgres_url):
    async with TcpProxy() as proxy, migrated_database(proxy.rewrite(postgres_url), request_timeout_s=0.2) as db:
        fresh = Database(proxy.rewrite(postgres_url), request_timeout_s=0.2)  # no pooled connection yet
        try:
            assert await db.claim_event("Ev-before") is True
            proxy.black_hole()
            for database in (db, fresh):  # a pooled connection goes silent; a new one is never answered
                async with asyncio.timeout(HUNG_S):
                    for attempt in range(3):
                        try:
                            await database.claim_event(f"Ev-hole-{attempt}")
                        except TimeoutError:
                            continue
                        raise AssertionError("a claim succeeded through a black hole")
            await proxy.restore()
            assert await db.claim_event("Ev-before") is False
            assert await fresh.claim_event("Ev-after") is True
        finally:
            await fresh.aclose()


async def test_while_one_call_waits_on_a_hung_database_the_others_fail_at_once(postgres_url):
    """A hanging database costs a request one bounded wait, not one per bookkeeping step: once a call timed out,
    a single bookkeeping call checks whether the database is back and concurrent ones are refused at once.
    Claims always ask (a busy database is not a hung one)."""
    async with TcpProxy() as proxy:
        db = Database(proxy.rewrite(postgres_url), request_timeout_s=0.2)
        try:
            await db.upgrade()
            await db.truncate_all()
            proxy.black_hole()
            try:
                await db.claim_event("Ev-first")
            except TimeoutError:
                pass
            async with asyncio.timeout(HUNG_S):
                outcomes = await asyncio.gather(*(db.bounded(db.get_setting(f"k{i}")) for i in range(5)),
                                                return_exceptions=True)
                claim = await asyncio.gather(db.claim_event("Ev-still-asks"), return_exceptions=True)
            kinds = sorted(type(o).__name__ for o in outcomes)
            assert kinds == ["DatabaseHungError"] * 4 + ["TimeoutError"]  # one checked, four did not wait
            assert type(claim[0]).__name__ == "TimeoutError"  # a claim waited its bound rather than fail at once
            await proxy.restore()
            assert await db.bounded(db.get_setting("k")) is None  # the next call checks, and is answered
            assert await db.claim_event("Ev-back") is True
        finally:
            await db.aclose()


async def test_rate_limit_checks_fail_open_on_a_black_hole(postgres_url):
    async with TcpProxy() as proxy:
        db = Database(proxy.rewrite(postgres_url), request_timeout_s=0.2)
        try:
            await db.upgrade()
            limiter = RateLimiter(db, per_user_per_minute=1, per_client_per_minute=1, timeout_s=5.0)
            user = f"U-{time.time_ns()}"
            proxy.black_hole()
            async with asyncio.timeout(HUNG_S):  # the database's own bound (0.2 s) answers, not the limiter's
                results = [await limiter.check_slack_user(user) for _ in range(3)]
            assert all(r.allowed and r.count == 0 for r in results)
            await proxy.restore()
            assert (await limiter.check_slack_user(user)).count == 1
        finally:
            await db.aclose()


async def test_slack_events_are_answered_unclaimed_while_the_database_never_answers(postgres_url):
    async with migrated_database(postgres_url):
        pass
    fake = await FakeSlack().start()
    try:
        async with (TcpProxy() as proxy, replica(proxy.rewrite(postgres_url), fake) as (url, work, runtime),
                    aiohttp.ClientSession() as http):
            before = mention(f"<@{BOT_USER_ID}> before the silence", channel="C0HOLE")
            assert await deliver(http, url, event_body(before)) == 200
            await fake.wait_for(lambda f: len(f.posts()) == 1)
            proxy.black_hole()
            during = [mention(f"<@{BOT_USER_ID}> during the silence {i}", channel="C0HOLE") for i in range(2)]
            assert await asyncio.gather(*(deliver(http, url, event_body(e)) for e in during)) == [200, 200]
            await fake.wait_for(lambda f: len(f.posts()) == 3, within_s=HUNG_S)
            assert work.unclaimed_answers == 2
            await proxy.restore()
            for _ in range(600):  # the rows held back land once the database answers; bounded at 30 s
                if runtime.db.request_log.pending == 0:
                    break
                await asyncio.sleep(0.05)
            assert runtime.db.request_log.pending == 0
        assert replies_per_thread(fake) == {e["ts"]: 1 for e in [before, *during]}
    finally:
        await fake.stop()
