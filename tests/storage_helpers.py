"""Shared bits for the storage tests."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import uuid
from collections.abc import AsyncIterator, Iterator

import asyncpg
import pytest

from storage.database import Database


@pytest.fixture
async def settle_aiosqlite_threads():
    """Wait for aiosqlite worker threads before the test's event loop closes.

    When a SQLite connect fails, aiosqlite (0.22) stops its worker thread with a future nobody awaits; if
    the loop closes first, the thread dies with "Event loop is closed". Joining it here keeps that noise
    (a PytestUnhandledThreadExceptionWarning) out of the tests that point at a database that is down.
    """
    yield
    for thread in threading.enumerate():
        if "_connection_worker_thread" in thread.name:
            await asyncio.to_thread(thread.join, 5)


@contextlib.contextmanager
def fresh_postgres_database(server_url: str, prefix: str = "bankbot_test") -> Iterator[str]:
    """A new, empty database on the PostgreSQL server of `server_url`; dropped afterwards. Yields its URL."""
    base, _, _ = server_url.rpartition("/")
    admin = f"{base}/postgres".replace("postgresql+asyncpg://", "postgresql://")
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"

    async def run(sql: str) -> None:
        conn = await asyncpg.connect(admin)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(run(f'CREATE DATABASE "{name}"'))
    try:
        yield f"{base}/{name}"
    finally:
        asyncio.run(run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@contextlib.asynccontextmanager
async def migrated_database(url: str, **options) -> AsyncIterator[Database]:
    """A Database at `url`, migrated and emptied, closed afterwards."""
    db = Database(url, **options)
    await db.upgrade()
    await db.truncate_all()
    try:
        yield db
    finally:
        await db.aclose()


async def wait_for_state(db: Database, key: str, state: str, within_s: float = 20.0) -> None:
    """Poll a claim's state (it changes in another task), up to a generous deadline."""
    async with asyncio.timeout(within_s):
        while True:
            claim = await db.get_claim(key)
            if claim is not None and claim.state == state:
                return
            await asyncio.sleep(0.02)
