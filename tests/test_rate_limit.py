"""Fixed-window rate limits in the database (SQLite and PostgreSQL), shared across replicas, failing open."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from bot.rate_limit import RateLimiter
from storage.database import Database
from storage.models import RateLimitCounter
from tests.clock import FrozenClock
from tests.storage_helpers import settle_aiosqlite_threads  # noqa: F401 - fixture
from tests.tcp_proxy import TcpProxy


@pytest.fixture(autouse=True)
def clock(frozen_clock: FrozenClock) -> FrozenClock:
    """Every Database here reads this clock (tests/clock.py): windows split only where a test moves it."""
    return frozen_clock


async def test_allows_up_to_the_limit_then_refuses_with_retry_after(database, clock):
    decisions = [await database.hit_rate_limit("slack:U1", window_s=60, limit=3) for _ in range(5)]
    assert [(d.allowed, d.count) for d in decisions] == [(True, 1), (True, 2), (True, 3), (False, 4), (False, 5)]
    assert all(d.retry_after_s == 0 for d in decisions[:3])
    assert all(d.retry_after_s == 60 - clock.now % 60 for d in decisions[3:])  # until the minute's window ends
    assert (await database.hit_rate_limit("slack:U2", window_s=60, limit=3)).allowed  # keys are independent


async def test_a_new_window_starts_a_new_count(database, clock):
    first = await database.hit_rate_limit("k", window_s=60, limit=1)
    clock.advance(39)
    refused = await database.hit_rate_limit("k", window_s=60, limit=1)  # 0.75 s before the window ends
    assert first.allowed and not refused.allowed and refused.retry_after_s == pytest.approx(0.75)
    clock.advance(refused.retry_after_s)
    again = await database.hit_rate_limit("k", window_s=60, limit=1)
    assert again.allowed and again.count == 1


async def test_the_count_is_shared_across_replicas(database, database_url):
    replica = Database(database_url)  # a second engine, as another process would have
    try:
        hits = [db.hit_rate_limit("api:client", window_s=60, limit=15) for _ in range(10) for db in (database, replica)]
        decisions = await asyncio.gather(*hits)
        assert sorted(d.count for d in decisions) == list(range(1, 21))  # no hit lost to a race
        assert sum(d.allowed for d in decisions) == 15
    finally:
        await replica.aclose()


async def test_finished_windows_are_pruned(database, clock):
    await database.hit_rate_limit("old", window_s=1, limit=5)
    await database.hit_rate_limit("current", window_s=3600, limit=5)
    assert await database.prune_rate_limits() == 0  # both windows are still open
    clock.advance(1)
    assert await database.prune_rate_limits() == 1
    async with database.sessions() as session:
        keys = (await session.scalars(RateLimitCounter.__table__.select().with_only_columns(
            RateLimitCounter.key))).all()
    assert keys == ["current"]


async def test_rate_limiter_messages_per_slack_user_and_api_client(database):
    limiter = RateLimiter(database, per_user_per_minute=2, per_client_per_minute=1)
    assert [(await limiter.check_slack_user("U1")).allowed for _ in range(3)] == [True, True, False]
    refused = await limiter.check_slack_user("U1")
    assert refused.message.startswith("You're sending messages faster than I can answer — please wait ")
    assert refused.message.endswith(" seconds.") or refused.message.endswith(" second.")
    assert str(refused.retry_after_whole_s) in refused.message and 1 <= refused.retry_after_whole_s <= 60
    assert (await limiter.check_slack_user("U2")).allowed  # another user has their own budget
    assert (await limiter.check_api_client("U1")).allowed  # Slack users and API clients are counted apart
    api_refused = await limiter.check_api_client("U1")
    assert not api_refused.allowed and "1 requests per minute" in api_refused.message


async def test_zero_disables_a_limit(database):
    limiter = RateLimiter(database, per_user_per_minute=0, per_client_per_minute=1)
    assert all([(await limiter.check_slack_user("U1")).allowed for _ in range(50)])
    async with database.sessions() as session:
        assert (await session.scalars(RateLimitCounter.__table__.select())).all() == []  # not even counted


@pytest.mark.usefixtures("settle_aiosqlite_threads")
async def test_fails_open_when_the_database_is_down(tmp_path, caplog):
    for url in (f"sqlite+aiosqlite:///{tmp_path / 'missing' / 'x.db'}", "postgresql+asyncpg://postgres@127.0.0.1:1/test"):
        db = Database(url)
        try:
            limiter = RateLimiter(db, per_user_per_minute=1, per_client_per_minute=1)
            with caplog.at_level(logging.DEBUG, logger="bot.rate_limit"):
                results = [await limiter.check_slack_user("U1") for _ in range(3)]
            assert all(r.allowed and r.count == 0 for r in results)
            assert "rate limit not checked" in caplog.text
        finally:
            await db.aclose()


async def test_fails_open_while_postgres_is_cut_and_counts_again_after(postgres_url):
    async with TcpProxy() as proxy:
        db = Database(proxy.rewrite(postgres_url))
        try:
            await db.upgrade()
            limiter = RateLimiter(db, per_user_per_minute=2, per_client_per_minute=2)
            user = f"U-{time.time_ns()}"
            assert (await limiter.check_slack_user(user)).count == 1
            await proxy.cut()
            assert all([(await limiter.check_slack_user(user)).allowed for _ in range(5)])  # not counted
            await proxy.restore()
            back = [await limiter.check_slack_user(user) for _ in range(2)]
            assert [(r.allowed, r.count) for r in back] == [(True, 2), (False, 3)]
        finally:
            await db.aclose()
