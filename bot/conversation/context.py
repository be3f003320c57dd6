"""The conversation's memory for context: each answered turn is kept (redacted) in the database by the bot itself,
keyed by conversation, so a follow-up carries the earlier turns to the LLMs (llm/context.py). Slack's
conversations.replies is rate-limited to one call a minute for many apps, so it is never read for this.

A thread or reply chain keeps its turns for CONTEXT_RETENTION_HOURS; a top-level DM has no threads, so there only
turns of the last CONTEXT_WINDOW_MIN minutes count. Turns older than the retention are purged at most once an
hour per replica, in the background, after a turn is stored.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import timedelta
from typing import Any

from bot.conversation.bookkeeping import FAILED, fail_open
from llm.context import Turn
from llm.redact import redact
from storage.context_turns import ContextStore
from storage.models import utcnow

log = logging.getLogger(__name__)
PURGE_EVERY_S = 3600.0

_last_purge: dict[int, float] = {}  # per database: monotonic time of the latest purge
_purges: set[asyncio.Task] = set()


class ConversationContext:
    def __init__(self, runtime: Any):
        self.settings = runtime.settings
        self.db = runtime.db
        self.store = ContextStore(runtime.db)

    async def turns(self, message: Any) -> list[Turn]:
        """The conversation's earlier turns, oldest first; none outside a conversation or when unreadable."""
        if not message.conversation or self.settings.context_turns <= 0:
            return []
        if getattr(message, "direct", False):
            window = timedelta(minutes=self.settings.context_window_min)
        else:
            window = timedelta(hours=self.settings.context_retention_hours)
        rows = await fail_open(self.db, f"read the context of {message.conversation}",
                               self.store.recent(message.conversation, self.settings.context_turns,
                                                 utcnow() - window), [])
        return [Turn(r["question"], r["answer"], r["intent"], r["created_at"]) for r in rows]

    async def remember(self, message: Any, answer: str, intent: str | None, model: str | None) -> None:
        """Store the turn, redacted; never raises."""
        if not message.conversation or self.settings.context_turns <= 0:
            return
        stored = await fail_open(self.db, f"store a context turn of {message.conversation}",
                                 self.store.add(message.conversation, redact(message.text), redact(answer), intent,
                                                model), FAILED)
        if stored is not FAILED:
            self._purge_when_due()

    async def purge(self) -> int:
        """Delete turns older than CONTEXT_RETENTION_HOURS; how many went."""
        return await self.store.purge(utcnow() - timedelta(hours=self.settings.context_retention_hours))

    def _purge_when_due(self) -> None:
        key = id(self.db)
        now = time.monotonic()
        if key in _last_purge and now - _last_purge[key] < PURGE_EVERY_S:
            return
        _last_purge[key] = now
        task = asyncio.create_task(self._purge_logged(), name="context-purge")
        _purges.add(task)
        task.add_done_callback(_purges.discard)

    async def _purge_logged(self) -> None:
        try:
            if gone := await self.purge():
                log.info("purged %d context turns older than %gh", gone, self.settings.context_retention_hours)
        except Exception as exc:  # noqa: BLE001 - retried at the next turn past the hour
            log.warning("context purge failed (%s)", type(exc).__name__)
