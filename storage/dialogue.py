"""The dialogue's rows: turns, clarifications (labelled examples once chosen), hand-off cases, feedback.

Knows nothing of models or front ends: questions arrive redacted, users hashed.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import and_, insert, select, update

from storage.dialects import dialect_insert
from storage.models import Clarification, DialogueTurn, Feedback, HandoffCase, utcnow

OPEN, TAKEN, RESOLVED, UNDELIVERED = "open", "taken", "resolved", "undelivered"
SOMETHING_ELSE = "something_else"


class DialogueStore:
    def __init__(self, db: Any):
        self.db = db  # storage.Database: its engine and read-only engine

    async def _insert(self, model: type, values: dict[str, Any]) -> int:
        async with self.db.engine.begin() as conn:
            return (await conn.execute(insert(model).values(values).returning(model.id))).scalar_one()

    async def _one(self, query) -> dict[str, Any] | None:
        async with self.db.reads.connect() as conn:
            row = (await conn.execute(query)).mappings().first()
        return dict(row) if row else None

    # -- turns ----------------------------------------------------------------------------------------

    async def add_turn(self, **values: Any) -> int:
        return await self._insert(DialogueTurn, {"created_at": utcnow()} | values)

    async def turn(self, turn_id: int) -> dict[str, Any] | None:
        return await self._one(select(DialogueTurn.__table__).where(DialogueTurn.id == turn_id))

    async def turn_for_request(self, request_id: str) -> dict[str, Any] | None:
        return await self._one(select(DialogueTurn.__table__).where(DialogueTurn.request_id == request_id))

    async def last_turns(self, conversation: str, n: int) -> list[dict[str, Any]]:
        """The conversation's latest `n` turns, newest first, each with `thumbs_down`: someone disliked it."""
        disliked = (select(Feedback.id).where(and_(Feedback.request_id == DialogueTurn.request_id,
                                                   Feedback.positive.is_(False))).exists())
        query = (select(DialogueTurn.__table__, disliked.label("thumbs_down"))
                 .where(DialogueTurn.conversation == conversation)
                 .order_by(DialogueTurn.id.desc()).limit(n))
        async with self.db.reads.connect() as conn:
            return [dict(r) for r in (await conn.execute(query)).mappings()]

    # -- clarifications -------------------------------------------------------------------------------

    async def add_clarification(self, **values: Any) -> int:
        return await self._insert(Clarification, {"created_at": utcnow()} | values)

    async def clarification(self, clarification_id: int) -> dict[str, Any] | None:
        return await self._one(select(Clarification.__table__).where(Clarification.id == clarification_id))

    async def choose(self, clarification_id: int, chosen: str, by: str) -> None:
        """The customer's pick; a later click replaces it (the latest choice is the label)."""
        async with self.db.engine.begin() as conn:
            await conn.execute(update(Clarification).where(Clarification.id == clarification_id)
                               .values(chosen=chosen, chosen_at=utcnow(), chosen_by=by))

    async def labels(self, since: datetime) -> list[tuple[str, str]]:
        """(redacted question, chosen intent) of every choice of an intent since `since`, oldest first."""
        query = (select(Clarification.question, Clarification.chosen)
                 .where(Clarification.chosen.is_not(None), Clarification.chosen != SOMETHING_ELSE,
                        Clarification.chosen_at >= since).order_by(Clarification.id))
        async with self.db.reads.connect() as conn:
            return [(q, c) for q, c in (await conn.execute(query)).all()]

    # -- hand-off cases -------------------------------------------------------------------------------

    async def open_case(self, **values: Any) -> int:
        return await self._insert(HandoffCase, {"opened_at": utcnow(), "status": OPEN} | values)

    async def case(self, case_id: int) -> dict[str, Any] | None:
        return await self._one(select(HandoffCase.__table__).where(HandoffCase.id == case_id))

    async def active_case(self, conversation: str) -> dict[str, Any] | None:
        """The conversation's open or taken case, if any (a second request must not open another)."""
        return await self._one(select(HandoffCase.__table__).where(
            HandoffCase.conversation == conversation, HandoffCase.status.in_((OPEN, TAKEN)))
            .order_by(HandoffCase.id.desc()).limit(1))

    async def update_case(self, case_id: int, **values: Any) -> None:
        async with self.db.engine.begin() as conn:
            await conn.execute(update(HandoffCase).where(HandoffCase.id == case_id).values(values))

    async def take(self, case_id: int, by: str) -> bool:
        """True when this click took the open case (a second agent's click loses)."""
        async with self.db.engine.begin() as conn:
            result = await conn.execute(update(HandoffCase).where(HandoffCase.id == case_id,
                                                                  HandoffCase.status == OPEN)
                                        .values(status=TAKEN, taken_by=by, taken_at=utcnow()))
        return result.rowcount == 1

    async def resolve(self, case_id: int, by: str) -> bool:
        async with self.db.engine.begin() as conn:
            result = await conn.execute(update(HandoffCase).where(HandoffCase.id == case_id,
                                                                  HandoffCase.status.in_((OPEN, TAKEN)))
                                        .values(status=RESOLVED, resolved_by=by, resolved_at=utcnow()))
        return result.rowcount == 1

    async def silencing_case(self, conversation: str, taken_since: datetime) -> dict[str, Any] | None:
        """A case a person took in this conversation since `taken_since` and has not resolved."""
        return await self._one(select(HandoffCase.__table__).where(
            HandoffCase.conversation == conversation, HandoffCase.status == TAKEN,
            HandoffCase.taken_at >= taken_since).limit(1))

    # -- feedback -------------------------------------------------------------------------------------

    async def give_feedback(self, *, request_id: str, user_hash: str, positive: bool, **linked: Any) -> None:
        """One row per person and answer: a second click changes the value (and clears an earlier reason)."""
        now = utcnow()
        values = {"request_id": request_id, "user_hash": user_hash, "positive": positive, "created_at": now,
                  "updated_at": now} | linked
        statement = dialect_insert(self.db.dialect, Feedback).values(values).on_conflict_do_update(
            index_elements=[Feedback.request_id, Feedback.user_hash],
            set_={"positive": positive, "updated_at": now, "reason": None})
        async with self.db.engine.begin() as conn:
            await conn.execute(statement)

    async def feedback_reason(self, *, request_id: str, user_hash: str, reason: str) -> bool:
        async with self.db.engine.begin() as conn:
            result = await conn.execute(update(Feedback).where(
                Feedback.request_id == request_id, Feedback.user_hash == user_hash,
                Feedback.positive.is_(False)).values(reason=reason, updated_at=utcnow()))
        return result.rowcount == 1

    async def feedback_rows(self, request_id: str) -> list[dict[str, Any]]:
        async with self.db.reads.connect() as conn:
            query = select(Feedback.__table__).where(Feedback.request_id == request_id).order_by(Feedback.id)
            return [dict(r) for r in (await conn.execute(query)).mappings()]
