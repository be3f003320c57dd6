"""Counts behind the dialogue analytics, per model: turns, hand-offs by reason, clarifications and clicks,
thumbs up and down, the intents with the most thumbs-down. `model` None: the turn reached no model (a person was
asked for first); such rows count in the overall figures only."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.models import Clarification, DialogueTurn, Feedback, HandoffCase


async def dialogue_counts(conn: AsyncConnection, since: datetime) -> dict[str, Any]:
    turns = await conn.execute(select(DialogueTurn.model, DialogueTurn.kind, func.count())
                               .where(DialogueTurn.created_at >= since).group_by(DialogueTurn.model, DialogueTurn.kind))
    cases = await conn.execute(select(DialogueTurn.model, HandoffCase.reason, func.count())
                               .select_from(HandoffCase).outerjoin(DialogueTurn, HandoffCase.turn_id == DialogueTurn.id)
                               .where(HandoffCase.opened_at >= since).group_by(DialogueTurn.model, HandoffCase.reason))
    handed = await conn.execute(select(DialogueTurn.model, func.count(func.distinct(HandoffCase.turn_id)))
                                .join(DialogueTurn, HandoffCase.turn_id == DialogueTurn.id)
                                .where(DialogueTurn.created_at >= since).group_by(DialogueTurn.model))
    clicks = await conn.execute(select(Clarification.model, Clarification.chosen, func.count())
                                .where(Clarification.created_at >= since)
                                .group_by(Clarification.model, Clarification.chosen))
    votes = await conn.execute(select(Feedback.model, Feedback.positive, func.count())
                               .where(Feedback.updated_at >= since).group_by(Feedback.model, Feedback.positive))
    downs = await conn.execute(select(Feedback.model, Feedback.intent, func.count())
                               .where(Feedback.updated_at >= since, Feedback.positive.is_(False))
                               .group_by(Feedback.model, Feedback.intent))
    return {"turns": turns.all(), "cases": cases.all(), "handed": handed.all(), "clicks": clicks.all(),
            "votes": votes.all(), "downs": downs.all()}
