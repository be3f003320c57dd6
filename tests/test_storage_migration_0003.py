"""Migration 0003 upgrades a database that already holds duplicate request ids, on SQLite and PostgreSQL.

Before 0003 a retried batch could write a request twice; the unique index must not make every replica's
start-up fail on such a database. The duplicates are removed first, the earliest row of each id kept.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from storage.database import Database
from storage.migrate import upgrade_on
from tests.storage_helpers import fresh_postgres_database

BEFORE_0003 = "0002_leases_and_rate_limits"
INSERT = text("INSERT INTO requests (id, created_at, request_id, source, model, latency_ms, prompt_tokens, "
              "completion_tokens, intent) VALUES (:id, :at, :request_id, 'api', 'custom', 5.0, 3, 4, :intent)")


@pytest.fixture
def empty_url(database_url, tmp_path):
    if database_url.startswith("sqlite"):
        yield f"sqlite+aiosqlite:///{tmp_path / 'old.db'}"
        return
    with fresh_postgres_database(database_url, "bankbot_0003") as url:
        yield url


async def test_duplicate_request_ids_are_removed_before_the_unique_index(empty_url):
    db = Database(empty_url)
    try:
        async with db.engine.begin() as conn:
            await conn.run_sync(upgrade_on, BEFORE_0003)
            rows = [(1, "req-a", "first"), (2, "req-a", "retried"), (3, "req-b", "only"), (4, "req-c", "first"),
                    (5, "req-a", "again"), (6, "req-c", "retried")]
            now = datetime.now(UTC)
            await conn.execute(INSERT, [{"id": i, "at": now, "request_id": r, "intent": n} for i, r, n in rows])

        await db.upgrade()  # to head, as `bankbot db upgrade` and every replica's start-up do

        async with db.engine.connect() as conn:
            kept = (await conn.execute(text("SELECT id, request_id, intent FROM requests ORDER BY id"))).all()
        assert [tuple(row) for row in kept] == [(1, "req-a", "first"), (3, "req-b", "only"), (4, "req-c", "first")]
        with pytest.raises(IntegrityError):  # and the index is unique now
            async with db.engine.begin() as conn:
                await conn.execute(INSERT, {"id": 7, "at": now, "request_id": "req-b", "intent": "dup"})
    finally:
        await db.aclose()
