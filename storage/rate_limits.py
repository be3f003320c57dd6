"""Fixed-window rate-limit counters in the database, shared by every replica.

One hit is one ``INSERT ... ON CONFLICT (key, window_start) DO UPDATE SET count = count + 1 RETURNING
count``: atomic on PostgreSQL and on SQLite (3.35+ for RETURNING), so concurrent hits from several
replicas are all counted. Windows are aligned on Unix time (``window_start`` is a multiple of
``window_s``), using the callers' clocks. Past windows are deleted by ``prune``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.models import RateLimitCounter


@dataclass(frozen=True)
class RateDecision:
    allowed: bool
    count: int  # hits in the current window, this one included
    retry_after_s: float  # until the window ends when refused; 0.0 when allowed


async def hit(conn: AsyncConnection, insert, key: str, window_s: int, limit: int, now: float) -> RateDecision:
    """Count one hit of ``key`` at Unix time ``now``; allowed while the window holds at most ``limit`` hits."""
    if window_s < 1 or limit < 0:
        raise ValueError("window_s must be >= 1 and limit >= 0")
    start = math.floor(now / window_s) * window_s
    statement = insert(RateLimitCounter).values(key=key, window_start=start, window_end=start + window_s, count=1)
    statement = statement.on_conflict_do_update(
        index_elements=[RateLimitCounter.key, RateLimitCounter.window_start],
        set_={"count": RateLimitCounter.count + 1},
    ).returning(RateLimitCounter.count)
    count = (await conn.execute(statement)).scalar_one()
    allowed = count <= limit
    return RateDecision(allowed, count, 0.0 if allowed else max(start + window_s - now, 0.0))


async def prune(conn: AsyncConnection, now: float) -> int:
    """Delete the counters of windows that are over; returns how many."""
    result = await conn.execute(delete(RateLimitCounter).where(RateLimitCounter.window_end <= math.floor(now)))
    return result.rowcount
