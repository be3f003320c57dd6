"""Channel reply chains the bot has answered in, shared by every replica through the processed-events table.

Teams sends a channel message without a mention only when the app holds the resource-specific consent permission
ChannelMessage.Read.Group; the bot then answers it when it answered in that reply chain (the conversation id of a
chain ends in `;messageid=<root>`) within the last hour (the table's retention)."""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy import select

from storage.database import Database
from storage.models import ProcessedEvent

log = logging.getLogger(__name__)
WAIT_S = 1.0  # a user waits on the read: a silent database costs at most this


def key(conversation_id: str) -> str:
    return f"teams:chain:{conversation_id}"


async def mark_answered(db: Database, conversation_id: str) -> None:
    try:
        await db.claim_event(key(conversation_id))
    except Exception as exc:  # noqa: BLE001 - follow-ups without a mention are a convenience
        log.info("could not record the reply chain %s: %s", conversation_id, type(exc).__name__)


async def answered_in(db: Database, conversation_id: str) -> bool:
    try:
        async with asyncio.timeout(WAIT_S), db.engine.connect() as conn:
            found = await conn.execute(select(ProcessedEvent.event_id)
                                       .where(ProcessedEvent.event_id == key(conversation_id)))
            return found.first() is not None
    except Exception as exc:  # noqa: BLE001 - fail closed: no answer to a message that did not mention the bot
        log.info("could not read the reply chain %s: %s", conversation_id, type(exc).__name__)
        return False
