"""Daily spend per paid model, shared by every replica: one row per (model, UTC day).

A reservation is one ``INSERT ... ON CONFLICT DO UPDATE SET usd = usd + :amount WHERE usd + :amount <= :limit
RETURNING usd``: atomic on PostgreSQL and SQLite, so two replicas can never both take the last dollar. When
the call has run, the difference between its real cost and the reservation is added (or given back).
"""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.models import ModelSpend, utcnow


async def reserve(conn: AsyncConnection, insert, model: str, day: str, amount: float, limit: float) -> float | None:
    """Add ``amount`` to the day's spend if it stays within ``limit``: the new total, or None (nothing added)."""
    if amount > limit:
        return None
    statement = insert(ModelSpend).values(model=model, day=day, usd=amount, updated_at=utcnow())
    statement = statement.on_conflict_do_update(
        index_elements=[ModelSpend.model, ModelSpend.day],
        set_={"usd": ModelSpend.usd + amount, "updated_at": utcnow()},
        where=ModelSpend.usd + amount <= limit,
    ).returning(ModelSpend.usd)
    return (await conn.execute(statement)).scalar_one_or_none()


async def adjust(conn: AsyncConnection, model: str, day: str, delta: float) -> None:
    """Correct a reservation by ``delta`` (the real cost minus the reserved amount); never below zero."""
    await conn.execute(update(ModelSpend).where(ModelSpend.model == model, ModelSpend.day == day)
                       .values(usd=ModelSpend.usd + delta, updated_at=utcnow()))
    await conn.execute(update(ModelSpend).where(ModelSpend.model == model, ModelSpend.day == day,
                                                ModelSpend.usd < 0).values(usd=0.0))


async def on_day(conn: AsyncConnection, day: str) -> dict[str, float]:
    rows = await conn.execute(select(ModelSpend.model, ModelSpend.usd).where(ModelSpend.day == day))
    return {model: float(usd) for model, usd in rows}
