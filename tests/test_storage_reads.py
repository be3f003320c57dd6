"""SQLite reads begin deferred: a writer holding the write lock never makes a dashboard or a settings read wait."""

import asyncio
from datetime import UTC, datetime

from sqlalchemy import text

from storage.database import Database

GENEROUS_S = 10.0  # far below the 30 s busy timeout a read taking the write lock would wait


async def test_reads_do_not_wait_for_a_writer_holding_the_lock(tmp_path):
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'locks.db'}")
    await db.upgrade()
    await db.put_setting("active_model", "custom")
    writer = db.engine.connect()
    conn = await writer.__aenter__()
    try:
        await conn.begin()  # BEGIN IMMEDIATE: the write lock is held until the rollback below
        await conn.execute(text("UPDATE settings SET value = 'qlora' WHERE key = 'active_model'"))
        async with asyncio.timeout(GENEROUS_S):
            assert await db.get_setting("active_model") == "custom"  # the last committed value
            assert await db.request_metrics() == []
            assert await db.latest_benchmark_runs(1) == []
            assert await db.list_switches() == []
            assert await db.benchmark_spend(datetime(2000, 1, 1, tzinfo=UTC), "periodic") == 0.0
            assert await db.ping()
    finally:
        await conn.rollback()
        await writer.__aexit__(None, None, None)
        await db.aclose()
