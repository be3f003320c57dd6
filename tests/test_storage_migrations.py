"""Alembic migrations from an empty database, on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect

from storage.database import Database
from storage.migrate import alembic_config, current_revision
from storage.models import Base
from tests.storage_helpers import fresh_postgres_database

TABLES = {"requests", "model_calls", "benchmark_runs", "benchmark_results", "model_switches", "settings",
          "processed_events", "leases", "rate_limit_counters", "model_spend", "dialogue_turns", "clarifications",
          "handoff_cases", "feedback", "slack_bots", "slack_installations", "slack_oauth_states",
          "context_turns"}


@pytest.fixture
def empty_url(database_url, tmp_path):
    """A database nobody has migrated yet (for SQLite, in a directory that does not exist yet)."""
    if database_url.startswith("sqlite"):
        yield f"sqlite+aiosqlite:///{tmp_path / 'not' / 'yet' / 'there.db'}"
        return
    with fresh_postgres_database(database_url, "bankbot_empty") as url:
        yield url


async def _tables(db: Database) -> set[str]:
    async with db.engine.connect() as conn:
        return set(await conn.run_sync(lambda sync: inspect(sync).get_table_names()))


async def _revision(db: Database) -> str | None:
    async with db.engine.connect() as conn:
        return await conn.run_sync(current_revision)


def _head() -> str:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


async def test_upgrade_from_empty_creates_every_table_and_is_idempotent(empty_url):
    db = Database(empty_url)
    try:
        await db.upgrade()  # creates the SQLite file's parent directory too
        assert await _tables(db) == TABLES | {"alembic_version"}
        assert await _revision(db) == _head()

        await db.put_setting("active_model", "custom")
        await db.upgrade()  # second run: nothing to do, data untouched
        assert await _revision(db) == _head()
        assert await db.get_setting("active_model") == "custom"
    finally:
        await db.aclose()


async def test_migrated_schema_matches_the_models(empty_url):
    """The hand-written revision and the ORM models describe the same schema (autogenerate finds nothing)."""
    db = Database(empty_url)
    try:
        await db.upgrade()

        def diff(sync_conn):
            context = MigrationContext.configure(sync_conn, opts={"compare_type": True})
            return compare_metadata(context, Base.metadata)

        async with db.engine.connect() as conn:
            assert await conn.run_sync(diff) == []
    finally:
        await db.aclose()


async def test_downgrade_to_base_and_back(empty_url):
    db = Database(empty_url)
    try:
        await db.upgrade()

        def downgrade(sync_conn):
            config = alembic_config()
            config.attributes["connection"] = sync_conn
            command.downgrade(config, "base")

        async with db.engine.begin() as conn:
            await conn.run_sync(downgrade)
        assert await _tables(db) <= {"alembic_version"}
        await db.upgrade()
        assert await _tables(db) == TABLES | {"alembic_version"}
    finally:
        await db.aclose()


def test_migrations_ship_with_the_package():
    """One linear history, found through the package path (no alembic.ini, no cwd assumptions)."""
    script = ScriptDirectory.from_config(alembic_config())
    assert Path(script.dir, "env.py").is_file() and Path(script.dir, "script.py.mako").is_file()
    revisions = list(script.walk_revisions())
    assert len(script.get_heads()) == 1 and revisions[-1].down_revision is None
