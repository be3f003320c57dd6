"""Shared fixtures: every test runs in its own temp dir with its own settings and databases."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from tests.clock import frozen_clock  # noqa: F401 - fixture: the storage tests' hand-moved wall clock
from tests.storage_helpers import fresh_postgres_database, migrated_database

REPO = Path(__file__).resolve().parent.parent
SHARED_BANKING77 = REPO.parent / "shared" / "data" / "banking77"
DEFAULT_PG_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"

# Read once, before the autouse fixture clears the environment for each test.
BANKING77_DIR = os.environ.get("BANKING77_DIR") or (str(SHARED_BANKING77) if SHARED_BANKING77.exists() else None)
PG_URL = os.environ.get("TEST_POSTGRES_URL", DEFAULT_PG_URL)
REQUIRE_POSTGRES = os.environ.get("REQUIRE_POSTGRES") == "1"

_ISOLATED_PREFIXES = ("LLM_", "DATABASE_", "MODEL_", "BENCHMARK", "FALLBACK_", "GEMINI_", "QLORA_", "VLLM_",
                      "SLACK_", "ADMIN_", "STORE_", "SHOW_", "CHARTS", "PORT", "BREAKER_", "RATE_")


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """No state leaks between tests: cwd, models, database and benchmark log all live in tmp_path."""
    for key in list(os.environ):
        if key.startswith(_ISOLATED_PREFIXES):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MODEL_DIR", str(tmp_path / "models"))
    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'bankbot.db'}")
    if BANKING77_DIR:
        monkeypatch.setenv("BANKING77_DIR", BANKING77_DIR)
    return tmp_path


@pytest.fixture
def banking77_dir():
    if not BANKING77_DIR:
        pytest.skip("Banking77 is not available: set BANKING77_DIR")
    return Path(BANKING77_DIR)


def _postgres_reachable() -> str | None:
    """None when PostgreSQL answers, else the reason it does not."""
    import asyncpg

    dsn = PG_URL.replace("postgresql+asyncpg://", "postgresql://")

    async def probe():
        conn = await asyncpg.connect(dsn, timeout=3)
        await conn.close()

    try:
        asyncio.run(probe())
    except Exception as exc:  # noqa: BLE001
        return f"PostgreSQL at {PG_URL} is unreachable ({type(exc).__name__}: {exc})"
    return None


@pytest.fixture(scope="session")
def postgres_url():
    """A fresh database on the test PostgreSQL server, dropped after the session.

    Skips when PostgreSQL is unreachable, unless REQUIRE_POSTGRES=1 (CI), where it fails.
    """
    reason = _postgres_reachable()
    if reason:
        if REQUIRE_POSTGRES:
            pytest.fail(reason + " and REQUIRE_POSTGRES=1")
        pytest.skip(reason)
    with fresh_postgres_database(PG_URL) as url:
        yield url


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request, tmp_path):
    """Each storage test runs on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'param.db'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
async def database(database_url):
    """A migrated, empty Database on each backend. Tables are emptied for PostgreSQL reuse."""
    async with migrated_database(database_url) as db:
        yield db


@pytest.fixture
async def db(tmp_path):
    """A migrated SQLite Database whose request rows are flushed every 10 ms (pipeline tests)."""
    async with migrated_database(f"sqlite+aiosqlite:///{tmp_path / 'pipeline.db'}", flush_interval_s=0.01) as database:
        yield database
