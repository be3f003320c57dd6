"""Leases: named locks with an expiry, held in the database so that they hold across replicas.

``acquire`` is one ``INSERT ... ON CONFLICT (name) DO UPDATE ... WHERE <expired or mine> RETURNING``:
the row is taken only when it is free, expired or already ours (which renews it), and the database
serialises concurrent attempts on the primary key, so exactly one caller wins on SQLite and PostgreSQL.
Expiry uses the callers' clocks, so replicas are assumed to keep time (NTP) to well within a lease's TTL.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.models import Lease


async def acquire(conn: AsyncConnection, insert, name: str, holder: str, ttl_s: float, now: datetime) -> bool:
    """Take or renew lease ``name`` for ``holder`` until ``now + ttl_s``; False while another holds it.

    ``insert`` is the dialect's INSERT construct (it has ``on_conflict_do_update`` on both backends).
    """
    if ttl_s <= 0:
        raise ValueError("ttl_s must be > 0")
    statement = insert(Lease).values(name=name, holder=holder, acquired_at=now,
                                     expires_at=now + timedelta(seconds=ttl_s))
    statement = statement.on_conflict_do_update(
        index_elements=[Lease.name],
        set_={"holder": statement.excluded.holder, "acquired_at": statement.excluded.acquired_at,
              "expires_at": statement.excluded.expires_at},
        where=(Lease.expires_at < statement.excluded.acquired_at) | (Lease.holder == statement.excluded.holder),
    ).returning(Lease.holder)
    return (await conn.execute(statement)).first() is not None


async def release(conn: AsyncConnection, name: str, holder: str) -> None:
    """Give lease ``name`` back, if ``holder`` still holds it (an expired lease taken over is left alone)."""
    await conn.execute(delete(Lease).where(Lease.name == name, Lease.holder == holder))
