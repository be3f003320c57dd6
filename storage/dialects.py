"""The dialect's own INSERT, which has ``on_conflict_do_*`` on both PostgreSQL and SQLite."""

from __future__ import annotations

from sqlalchemy.dialects import postgresql, sqlite


def dialect_insert(dialect: str, table):
    """``INSERT`` for ``table`` with ON CONFLICT support on the given dialect ("postgresql" or "sqlite")."""
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)
