"""The batched request log and the per-model metrics query, on SQLite and PostgreSQL; database-down behaviour."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from sqlalchemy import func, select

from storage.database import Database
from storage.models import RequestRecord
from tests.storage_helpers import settle_aiosqlite_threads  # noqa: F401 - fixture


def row(i: int = 0, **overrides) -> dict:
    base = {"request_id": f"req-{i}", "source": "slack", "user_hash": "u1", "model": "custom",
            "model_version": "custom_model_built_0.1.0", "device": "cpu", "latency_ms": 10.0 + i,
            "prompt_tokens": 12, "completion_tokens": 3, "confidence": 0.9, "intent": "card_arrival",
            "error": None, "fallback_from": None}
    return base | overrides


async def eventually(condition, timeout_s: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


async def count_rows(db: Database) -> int:
    async with db.engine.connect() as conn:
        return (await conn.execute(select(func.count()).select_from(RequestRecord))).scalar_one()


async def request_ids(db: Database) -> list[str]:
    async with db.engine.connect() as conn:
        return list((await conn.scalars(select(RequestRecord.request_id).order_by(RequestRecord.id))).all())


async def test_full_batch_is_written_without_waiting_for_the_interval(database):
    log = database.request_log
    log.flush_interval_s, log.batch_size = 3600.0, 5  # only a full batch can trigger a write
    for i in range(4):
        log.add(row(i))
    await asyncio.sleep(0.05)
    assert (log.pending, log.written) == (4, 0)
    log.add(row(4))
    await eventually(lambda: log.written == 5)
    assert log.pending == 0 and await count_rows(database) == 5


async def test_background_writer_flushes_on_the_interval(database_url):
    db = Database(database_url, flush_interval_s=0.02, batch_size=500)
    try:
        await db.upgrade()
        await db.truncate_all()
        db.request_log.add(row(1))
        db.request_log.add(row(2, message="[REDACTED] my card is late"))
        await eventually(lambda: db.request_log.written == 2)
        async with db.sessions() as session:
            stored = [r.as_dict() for r in await session.scalars(select(RequestRecord).order_by(RequestRecord.id))]
        assert [r["request_id"] for r in stored] == ["req-1", "req-2"]
        assert stored[1]["message"] == "[REDACTED] my card is late" and stored[0]["message"] is None
        assert all(r["created_at"].utcoffset() == timedelta(0) for r in stored)
    finally:
        await db.aclose()


async def test_aclose_flushes_what_is_left(database_url):
    db = Database(database_url, flush_interval_s=3600.0)
    await db.upgrade()
    await db.truncate_all()
    for i in range(7):
        db.request_log.add(row(i))
    await db.aclose()
    assert db.request_log.written == 7
    check = Database(database_url)
    try:
        assert await count_rows(check) == 7
    finally:
        await check.aclose()


async def test_bad_rows_are_rejected_without_raising(database, caplog):
    log = database.request_log
    with caplog.at_level(logging.WARNING, logger="storage.request_log"):
        log.add(row(1, latency_ms="fast"))
        log.add(row(2, colour="blue"))
        log.add({"source": "api"})
        log.add("not a dict")  # type: ignore[arg-type]
    assert log.rejected == 4 and log.pending == 0
    assert "unknown keys ['colour']" in caplog.text and "missing 'request_id'" in caplog.text
    log.add(row(3))
    await log.flush()
    assert await request_ids(database) == ["req-3"]


async def test_metrics_match_numpy(database):
    rng = np.random.default_rng(7)
    custom = rng.lognormal(3.0, 0.8, size=137).round(3)
    gemini = np.array([120.0, 80.0, 95.5, 300.25, 101.0])
    log = database.request_log
    for i, latency in enumerate(custom):
        log.add(row(i, latency_ms=float(latency), prompt_tokens=10, completion_tokens=2))
    for i in range(13):  # failures: counted in error_rate and tokens, excluded from latency figures
        log.add(row(1000 + i, latency_ms=99_999.0, error="ModelResponseError: bad json", prompt_tokens=10,
                    completion_tokens=0))
    for i, latency in enumerate(gemini):
        log.add(row(2000 + i, model="gemini", device="cloud", latency_ms=float(latency), fallback_from="custom"))
    await log.flush()

    by_model = {m["model"]: m for m in await database.request_metrics()}
    assert set(by_model) == {"custom", "gemini"}
    c, g = by_model["custom"], by_model["gemini"]
    assert c["count"] == 150 and c["error_rate"] == pytest.approx(13 / 150)
    assert c["prompt_tokens"] == 1500 and c["completion_tokens"] == 2 * 137
    assert c["avg_latency_ms"] == pytest.approx(custom.mean())
    assert c["latency_p50_ms"] == pytest.approx(np.percentile(custom, 50))
    assert c["latency_p99_ms"] == pytest.approx(np.percentile(custom, 99))
    assert g["count"] == 5 and g["error_rate"] == 0.0
    assert g["latency_p50_ms"] == pytest.approx(np.percentile(gemini, 50))
    assert g["latency_p99_ms"] == pytest.approx(np.percentile(gemini, 99))


async def test_metrics_window_and_all_failed_model(database):
    now = datetime.now(UTC)
    log = database.request_log
    log.add(row(1, latency_ms=1000.0, created_at=now - timedelta(hours=2)))
    log.add(row(2, latency_ms=10.0, created_at=now - timedelta(minutes=5)))
    log.add(row(3, latency_ms=30.0, created_at=now - timedelta(minutes=1)))
    log.add(row(4, model="qlora", latency_ms=5.0, error="ModelUnavailableError", created_at=now))
    await log.flush()

    [recent, qlora] = await database.request_metrics(since=now - timedelta(hours=1))
    assert (recent["model"], recent["count"]) == ("custom", 2)
    assert recent["latency_p50_ms"] == pytest.approx(20.0) and recent["avg_latency_ms"] == pytest.approx(20.0)
    assert qlora["model"] == "qlora" and qlora["error_rate"] == 1.0
    assert qlora["avg_latency_ms"] is None and qlora["latency_p50_ms"] is None and qlora["latency_p99_ms"] is None

    [everything, _] = await database.request_metrics()
    assert everything["count"] == 3
    assert await database.request_metrics(since=now + timedelta(minutes=1)) == []


# -- database down -------------------------------------------------------------------------------------

DOWN_URLS = {
    "sqlite": lambda tmp: f"sqlite+aiosqlite:///{tmp / 'no-such-dir' / 'bankbot.db'}",
    "postgres": lambda tmp: "postgresql+asyncpg://postgres@127.0.0.1:1/test",
}


@pytest.mark.parametrize("backend", DOWN_URLS)
@pytest.mark.usefixtures("settle_aiosqlite_threads")
async def test_database_down_keeps_rows_and_never_raises(backend, tmp_path):
    db = Database(DOWN_URLS[backend](tmp_path), flush_interval_s=0.01, batch_size=2)
    try:
        for i in range(5):
            db.request_log.add(row(i))  # must not raise, must not block
        assert await db.request_log.flush() == 0
        await asyncio.sleep(0.1)  # the background writer retries (with backoff) and fails too
        assert db.request_log.pending == 5 and db.request_log.written == 0 and db.request_log.dropped == 0
        assert db.request_log.last_error
    finally:
        await db.aclose()  # best effort: no exception either


@pytest.mark.parametrize("backend", DOWN_URLS)
@pytest.mark.usefixtures("settle_aiosqlite_threads")
async def test_full_buffer_drops_the_oldest_rows(backend, tmp_path, caplog):
    db = Database(DOWN_URLS[backend](tmp_path), buffer_limit=3, flush_interval_s=3600.0)
    try:
        with caplog.at_level(logging.WARNING, logger="storage.request_log"):
            for i in range(10):
                db.request_log.add(row(i))
            await db.request_log.flush()  # fails, puts the batch back: still bounded
        assert db.request_log.pending == 3 and db.request_log.dropped == 7
        assert [r["request_id"] for r in db.request_log._buffer] == ["req-7", "req-8", "req-9"]
        assert "dropped" in caplog.text
    finally:
        await db.aclose()


@pytest.mark.usefixtures("settle_aiosqlite_threads")
async def test_rows_buffered_while_down_are_written_after_recovery(tmp_path):
    """SQLite file in a missing directory: down. Create it and migrate: the background writer catches up."""
    db = Database(DOWN_URLS["sqlite"](tmp_path), buffer_limit=4, flush_interval_s=0.01)
    try:
        for i in range(6):
            db.request_log.add(row(i))
        await db.request_log.flush()
        assert db.request_log.pending == 4 and db.request_log.dropped == 2

        await db.upgrade()  # creates the directory and the tables
        await eventually(lambda: db.request_log.pending == 0)
        assert db.request_log.written == 4 and db.request_log.last_error is None
        assert await request_ids(db) == ["req-2", "req-3", "req-4", "req-5"]
    finally:
        await db.aclose()


async def test_rows_buffered_while_tables_are_missing_are_written_after_migration(database_url):
    """The database answers but is not migrated yet (PostgreSQL and SQLite): rows wait, then land."""
    db = Database(database_url, flush_interval_s=0.01)
    try:
        await db.upgrade()
        async with db.engine.begin() as conn:
            await conn.run_sync(lambda sync: RequestRecord.__table__.drop(sync))
        db.request_log.add(row(1))
        db.request_log.add(row(2))
        await db.request_log.flush()
        assert db.request_log.pending == 2 and db.request_log.last_error

        async with db.engine.begin() as conn:
            await conn.run_sync(lambda sync: RequestRecord.__table__.create(sync))
        await eventually(lambda: db.request_log.pending == 0)
        assert await request_ids(db) == ["req-1", "req-2"]
    finally:
        await db.aclose()


async def test_a_batch_written_twice_is_stored_once(database):
    """A write that committed but whose reply was lost is retried; the request ids keep it from doubling."""
    log = database.request_log
    for i in range(3):
        log.add(row(i))
    await log.flush()
    for i in range(5):  # the same three again (the retry), plus two new rows
        log.add(row(i))
    await log.flush()
    assert await request_ids(database) == [f"req-{i}" for i in range(5)]


async def test_a_message_with_nul_bytes_is_stored_without_them_and_blocks_nothing(database):
    """PostgreSQL text cannot hold NUL: such a row must neither fail its batch nor be lost."""
    log = database.request_log
    log.add(row(0, message="card\x00 4111"))
    log.add(row(1))
    await log.flush()
    assert log.pending == 0 and log.rejected == 0
    async with database.engine.connect() as conn:
        stored = (await conn.scalars(select(RequestRecord.message).order_by(RequestRecord.id))).all()
    assert list(stored) == ["card 4111", None]
