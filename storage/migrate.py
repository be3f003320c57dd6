"""Alembic, configured in code: no alembic.ini, works from a source checkout and from an installed package."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, text

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
_PG_MIGRATION_LOCK = 7_271_993  # any constant; serialises concurrent upgrades from several replicas


def alembic_config(url: str | None = None) -> Config:
    """An Alembic Config pointing at storage/migrations. ``url`` is only needed when no connection is passed."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("path_separator", "os")
    if url:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade_on(connection: Connection, revision: str = "head") -> None:
    """Run ``alembic upgrade`` on an open (sync) connection, e.g. from ``AsyncConnection.run_sync``."""
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK})
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, revision)


def current_revision(connection: Connection) -> str | None:
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(connection).get_current_revision()
