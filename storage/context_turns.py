"""Conversation context: each answered turn of a conversation (the redacted question and the answer shown), kept
CONTEXT_RETENTION_HOURS for the models that read a thread's earlier turns, then purged (migration 0009).

Not the dialogue's `dialogue_turns`: those rows feed analytics, labels and hand-off cases (clarifications and
cases point at them) and hold no answer text; these hold text and live one day. Rows arrive redacted: this module
knows nothing of models and never sees raw personal data.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Column, Index, Integer, String, Table, Text, delete, insert, select

from storage.models import Base, UTCDateTime, utcnow

context_turns = Table(
    "context_turns", Base.metadata,
    Column("id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True),
    Column("created_at", UTCDateTime(), nullable=False, index=True),
    Column("conversation", String, nullable=False),  # the front end's thread / reply chain / DM key
    Column("question", Text, nullable=False),  # redacted
    Column("answer", Text, nullable=False),  # redacted: what the customer was shown
    Column("intent", String),
    Column("model", String),
    Index("ix_context_turns_conversation_id", "conversation", "id"),
)


class ContextStore:
    def __init__(self, db: Any):
        self.db = db  # storage.Database

    async def add(self, conversation: str, question: str, answer: str, intent: str | None = None,
                  model: str | None = None, at: datetime | None = None) -> None:
        values = {"created_at": at or utcnow(), "conversation": conversation, "question": question,
                  "answer": answer, "intent": intent, "model": model}
        async with self.db.engine.begin() as conn:
            await conn.execute(insert(context_turns).values(values))

    async def recent(self, conversation: str, n: int, since: datetime) -> list[dict[str, Any]]:
        """The conversation's latest `n` turns since `since`, oldest first."""
        query = (select(context_turns).where(context_turns.c.conversation == conversation,
                                             context_turns.c.created_at >= since)
                 .order_by(context_turns.c.id.desc()).limit(n))
        async with self.db.reads.connect() as conn:
            rows = [dict(r) for r in (await conn.execute(query)).mappings()]
        return rows[::-1]

    async def purge(self, before: datetime) -> int:
        """Delete every turn older than `before`; how many went."""
        async with self.db.engine.begin() as conn:
            return (await conn.execute(delete(context_turns).where(context_turns.c.created_at < before))).rowcount
