"""Leases in the database: one holder at a time across engines, expiry, renewal, release; SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import UTC

import pytest
from sqlalchemy import select

from storage.database import Database
from storage.models import Lease
from tests.clock import FrozenClock


async def test_only_one_holder_gets_the_lease(database):
    assert await database.acquire_lease("bench", "replica-a", ttl_s=60) is True
    assert await database.acquire_lease("bench", "replica-b", ttl_s=60) is False
    assert await database.acquire_lease("other", "replica-b", ttl_s=60) is True  # leases are independent


async def expiry(database: Database, name: str) -> float:
    async with database.engine.connect() as conn:
        expires_at = (await conn.execute(select(Lease.expires_at).where(Lease.name == name))).scalar_one()
    return expires_at.timestamp() if expires_at.tzinfo else expires_at.replace(tzinfo=UTC).timestamp()


async def test_the_holder_renews_its_own_lease(database, frozen_clock: FrozenClock):
    assert await database.acquire_lease("bench", "replica-a", ttl_s=30) is True
    assert await expiry(database, "bench") == frozen_clock.now + 30
    frozen_clock.advance(20)
    assert await database.acquire_lease("bench", "replica-a", ttl_s=30) is True  # renewed: expires 30 s later
    assert await expiry(database, "bench") == frozen_clock.now + 30
    frozen_clock.advance(20)  # past the first expiry, within the renewed one
    assert await database.acquire_lease("bench", "replica-b", ttl_s=60) is False
    frozen_clock.advance(10.001)  # past the renewed expiry
    assert await database.acquire_lease("bench", "replica-b", ttl_s=60) is True


async def test_an_expired_lease_can_be_taken_over(database, frozen_clock: FrozenClock):
    assert await database.acquire_lease("bench", "crashed-replica", ttl_s=10) is True
    frozen_clock.advance(9.999)
    assert await database.acquire_lease("bench", "replica-b", ttl_s=60) is False
    frozen_clock.advance(0.002)
    assert await database.acquire_lease("bench", "replica-b", ttl_s=60) is True
    await database.release_lease("bench", "crashed-replica")  # too late: it no longer holds it, nothing happens
    assert await database.acquire_lease("bench", "replica-c", ttl_s=60) is False


async def test_release_frees_the_lease(database):
    assert await database.acquire_lease("bench", "replica-a", ttl_s=60) is True
    await database.release_lease("bench", "replica-b")  # not the holder: no effect
    assert await database.acquire_lease("bench", "replica-b", ttl_s=60) is False
    await database.release_lease("bench", "replica-a")
    assert await database.acquire_lease("bench", "replica-b", ttl_s=60) is True


async def test_ttl_must_be_positive(database):
    with pytest.raises(ValueError, match="ttl_s"):
        await database.acquire_lease("bench", "replica-a", ttl_s=0)


async def test_concurrent_acquires_from_two_engines_exactly_one_wins(database, database_url):
    replica = Database(database_url)  # a second engine, as another process would have
    try:
        attempts = [db.acquire_lease("race", f"holder-{i}-{n}", ttl_s=60)
                    for i in range(10) for n, db in enumerate((database, replica))]
        results = await asyncio.gather(*attempts)
        assert results.count(True) == 1
    finally:
        await replica.aclose()
