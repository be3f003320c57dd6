"""Durable claims: the de-duplication row of a delivery also records the work, so a question acknowledged by a
replica that dies is answered by another.

A claim is ``claimed`` by the replica that won the insert, ``answering`` while the model works, then ``answered``,
or ``failed`` with a reason. Its ``holder`` renews ``lease_expires_at`` while it works (one statement per replica,
``renew``); once the lease has passed, any replica may ``take_over`` the claim. The take-over is one conditional
``UPDATE ... WHERE event_id = ? AND <still open and expired>``: SQLite serialises writers (BEGIN IMMEDIATE) and
PostgreSQL re-checks the condition on the locked row, so exactly one replica wins. Every state change is
conditional on the holder, so a replica that lost its claim (it stalled past its lease) finds out and stops.
Expiry uses the callers' clocks: replicas are assumed to keep time (NTP) to well within a lease.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.models import ProcessedEvent

CLAIMED, ANSWERING, ANSWERED, FAILED = "claimed", "answering", "answered", "failed"
OPEN = (CLAIMED, ANSWERING)


@dataclass(frozen=True)
class Claim:
    key: str
    source: str
    user_id: str
    question: str
    reference: str  # JSON, as the front end wrote it
    state: str
    holder: str | None
    created_at: datetime
    lease_expires_at: datetime | None
    attempts: int
    answer_ref: str | None

    def age_s(self, now: datetime) -> float:
        return (now - self.created_at).total_seconds()


def _claim(row) -> Claim:
    return Claim(row.event_id, row.source or "", row.user_id or "", row.question or "", row.reference or "{}",
                 row.state, row.holder, row.created_at, row.lease_expires_at, row.attempts, row.answer_ref)


_COLUMNS = (ProcessedEvent.event_id, ProcessedEvent.source, ProcessedEvent.user_id, ProcessedEvent.question,
            ProcessedEvent.reference, ProcessedEvent.state, ProcessedEvent.holder, ProcessedEvent.created_at,
            ProcessedEvent.lease_expires_at, ProcessedEvent.attempts, ProcessedEvent.answer_ref)


async def claim_many(conn: AsyncConnection, insert, rows: list[dict], *, now: datetime) -> set[str]:
    """Insert the claims of many deliveries in one statement (each row: key, holder, lease_s, source, user_id,
    question, reference), each held by its holder; returns the keys inserted. A key that any earlier delivery
    claimed, or repeated in ``rows``, is inserted at most once (storage/claim_batch.py gives the first its win)."""
    rows = sorted(rows, key=lambda r: r["key"])  # one lock order in every replica's batch: no deadlock on PostgreSQL
    values = [dict(event_id=r["key"], created_at=now, source=r["source"], user_id=r["user_id"],
                   question=r["question"], reference=r["reference"], state=CLAIMED, holder=r["holder"],
                   lease_expires_at=now + timedelta(seconds=r["lease_s"]), attempts=0, updated_at=now) for r in rows]
    statement = (insert(ProcessedEvent).values(values)
                 .on_conflict_do_nothing(index_elements=[ProcessedEvent.event_id]).returning(ProcessedEvent.event_id))
    return {key for (key,) in (await conn.execute(statement)).all()}


async def set_state(conn: AsyncConnection, key: str, holder: str, state: str, now: datetime,
                    reason: str | None = None, lease_s: float | None = None, answer_ref: str | None = None) -> bool:
    """Move the claim to ``state`` if ``holder`` still holds it and it is open; False otherwise (taken over).
    ``lease_s``: the lease is renewed too (until ``now + lease_s``), so the holder that checks it still holds
    the claim right before posting keeps it for a whole lease while it posts."""
    values = {"state": state, "updated_at": now}
    if reason is not None:
        values["reason"] = reason[:500]
    if lease_s is not None:
        values["lease_expires_at"] = now + timedelta(seconds=lease_s)
    if answer_ref is not None:  # the posted message's id, recorded with the state that follows the post
        values["answer_ref"] = func.coalesce(ProcessedEvent.answer_ref, answer_ref)
    result = await conn.execute(update(ProcessedEvent).where(
        ProcessedEvent.event_id == key, ProcessedEvent.holder == holder, ProcessedEvent.state.in_(OPEN))
        .values(values))
    return result.rowcount > 0


async def record_post(conn: AsyncConnection, key: str, message_id: str, now: datetime) -> bool:
    """Record the answer's message id, the first one posted: later attempts see the answer went out."""
    result = await conn.execute(update(ProcessedEvent).where(
        ProcessedEvent.event_id == key, ProcessedEvent.answer_ref.is_(None))
        .values(answer_ref=message_id, updated_at=now))
    return result.rowcount > 0


async def renew(conn: AsyncConnection, holder: str, lease_s: float, now: datetime) -> int:
    """Extend every open claim ``holder`` holds to ``now + lease_s``; returns how many."""
    result = await conn.execute(update(ProcessedEvent).where(
        ProcessedEvent.holder == holder, ProcessedEvent.state.in_(OPEN))
        .values(lease_expires_at=now + timedelta(seconds=lease_s)))
    return result.rowcount


async def release(conn: AsyncConnection, holder: str, now: datetime, keys: list[str] | None = None) -> int:
    """End the leases of ``holder``'s open claims (or of ``keys`` among them) now, so another replica takes
    them over at once; returns how many."""
    condition = [ProcessedEvent.holder == holder, ProcessedEvent.state.in_(OPEN)]
    if keys is not None:
        condition.append(ProcessedEvent.event_id.in_(keys))
    result = await conn.execute(update(ProcessedEvent).where(*condition)
                                .values(lease_expires_at=now, updated_at=now))
    return result.rowcount


async def expired(conn: AsyncConnection, now: datetime, limit: int) -> list[str]:
    """Keys of open claims whose lease has run out (their holder died or let go), oldest first."""
    query = (select(ProcessedEvent.event_id)
             .where(ProcessedEvent.state.in_(OPEN), ProcessedEvent.lease_expires_at <= now)
             .order_by(ProcessedEvent.created_at).limit(limit))
    return list((await conn.execute(query)).scalars())


async def take_over(conn: AsyncConnection, key: str, holder: str, lease_s: float, now: datetime) -> Claim | None:
    """Take claim ``key`` for ``holder`` if it is still open and its lease has run out: one caller wins."""
    statement = (update(ProcessedEvent).where(
        ProcessedEvent.event_id == key, ProcessedEvent.state.in_(OPEN),
        or_(ProcessedEvent.lease_expires_at.is_(None), ProcessedEvent.lease_expires_at <= now))
        .values(holder=holder, lease_expires_at=now + timedelta(seconds=lease_s), state=CLAIMED,
                attempts=ProcessedEvent.attempts + 1, updated_at=now)
        .returning(*_COLUMNS))
    row = (await conn.execute(statement)).first()
    return _claim(row) if row is not None else None


async def get(conn: AsyncConnection, key: str) -> Claim | None:
    row = (await conn.execute(select(*_COLUMNS).where(ProcessedEvent.event_id == key))).first()
    return _claim(row) if row is not None and row.state is not None else None


async def oldest_open(conn: AsyncConnection) -> datetime | None:
    """When the oldest claim not yet answered (nor failed) was made; None when there is none."""
    return (await conn.execute(select(func.min(ProcessedEvent.created_at))
                               .where(ProcessedEvent.state.in_(OPEN)))).scalar_one()
