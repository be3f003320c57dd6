"""The de-duplication and durable-claim queries of ``storage.database.Database`` (the statements themselves are in
storage/claims.py). A mixin: it uses the Database's engines, its bounded calls (``_bounded``: a user waits on a
claim) and its housekeeping, and is one concept kept out of that file to keep it readable."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from storage import claims
from storage.models import ProcessedEvent, utcnow


class ClaimQueries:
    # -- Slack and Teams delivery de-duplication -------------------------------------------------------

    async def claim_event(self, event_id: str) -> bool:
        """True for the first claim of ``event_id`` across every process and replica, False afterwards.
        TimeoutError after ``request_timeout_s`` (a user waits on it)."""
        statement = (self._insert(ProcessedEvent).values(event_id=event_id, created_at=utcnow())
                     .on_conflict_do_nothing(index_elements=[ProcessedEvent.event_id])
                     .returning(ProcessedEvent.event_id))

        async def claim() -> bool:
            async with self.claims_engine.begin() as conn:
                return (await conn.execute(statement)).first() is not None

        claimed = await self._bounded(claim())
        self._schedule_housekeeping()
        return claimed

    # -- durable claims: the work a claimed delivery stands for (storage/claims.py) ---------------------

    async def _insert_claims(self, conn: Any, rows: list[dict[str, Any]]) -> set[str]:
        return await claims.claim_many(conn, self._insert, rows, now=utcnow())

    async def claim_work(self, key: str, *, holder: str, lease_s: float, source: str, user_id: str,
                         question: str, reference: str, timeout_s: float | None = None) -> bool:
        """claim_event's durable form: the first claim of ``key`` also records the work (``question`` already
        redacted), held by ``holder`` for ``lease_s``. TimeoutError after ``timeout_s`` (default
        ``request_timeout_s``)."""
        row = dict(key=key, holder=holder, lease_s=lease_s, source=source, user_id=user_id, question=question,
                   reference=reference)
        claimed = await self._bounded(self.claim_batch.claim(row), timeout_s)
        self._schedule_housekeeping()
        return claimed

    async def set_claim_state(self, key: str, holder: str, state: str, reason: str | None = None,
                              lease_s: float | None = None, answer_ref: str | None = None) -> bool:
        """Move an open claim ``holder`` holds to ``state`` (renewing its lease for ``lease_s`` when given);
        False when it is no longer ``holder``'s."""
        async def change() -> bool:
            async with self.engine.begin() as conn:
                return await claims.set_state(conn, key, holder, state, utcnow(), reason, lease_s, answer_ref)

        return await self._bounded(change())

    async def record_claim_post(self, key: str, message_id: str) -> bool:
        """Record the posted answer's message id (the first one only)."""
        async def record() -> bool:
            async with self.engine.begin() as conn:
                return await claims.record_post(conn, key, message_id, utcnow())

        return await self._bounded(record())

    async def renew_claims(self, holder: str, lease_s: float) -> int:
        """Extend the leases of every open claim ``holder`` holds; returns how many."""
        async with self.engine.begin() as conn:
            return await claims.renew(conn, holder, lease_s, utcnow())

    async def release_claims(self, holder: str, keys: list[str] | None = None) -> int:
        """End the leases of ``holder``'s open claims (or of ``keys``) now, for another replica to take over."""
        async with self.engine.begin() as conn:
            return await claims.release(conn, holder, utcnow(), keys)

    async def expired_claims(self, limit: int = 50) -> list[str]:
        """Keys of open claims whose lease has run out, oldest first."""
        async with self.reads.connect() as conn:
            return await claims.expired(conn, utcnow(), limit)

    async def take_over_claim(self, key: str, holder: str, lease_s: float) -> claims.Claim | None:
        """Take an expired open claim for ``holder``; None when another replica won it or it is no longer open."""
        async with self.engine.begin() as conn:
            return await claims.take_over(conn, key, holder, lease_s, utcnow())

    async def get_claim(self, key: str) -> claims.Claim | None:
        async with self.reads.connect() as conn:
            return await claims.get(conn, key)

    async def oldest_open_claim_age_s(self) -> float:
        """Seconds since the oldest claim not yet answered was made; 0 when there is none."""
        async with self.reads.connect() as conn:
            oldest = await claims.oldest_open(conn)
        return max(0.0, (utcnow() - oldest).total_seconds()) if oldest is not None else 0.0

    def now(self) -> datetime:
        """The clock claims are stamped with (tests freeze it)."""
        return utcnow()
