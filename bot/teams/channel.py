"""The conversation core's Channel for one Teams message: a typing indicator while the model works, long answers
streamed through the SDK's StreamingResponse in 1:1 chats (Teams streams nowhere else), everything else sent as
messages split under Teams' size limit, in the message's reply chain."""

from __future__ import annotations

import asyncio
import re
from contextlib import asynccontextmanager

from microsoft_agents.activity import Activity
from microsoft_agents.hosting.core import TurnContext
from microsoft_agents.hosting.core.app import TypingIndicator, TypingOptions

from bot.conversation.core import Reply
from bot.teams.format import TEXT_LIMIT, answer_texts, escape, footer_line, message

TYPING = TypingOptions(initial_delay_ms=0, interval_ms=3000)  # at once, then while the model works
STREAM_CHUNK = 400  # characters per queued chunk; the SDK merges what is queued between its 1 s sends


class TeamsChannel:
    def __init__(self, context: TurnContext, conversation_type: str):
        self.context = context
        self.personal = conversation_type == "personal"

    @asynccontextmanager
    async def working(self):
        async with TypingIndicator(self.context, typing_options=TYPING):
            yield

    async def send(self, reply: Reply) -> None:
        if not reply.is_answer:
            await self.context.send_activity(message(escape(reply.text), reply.suggestions))
            return
        if reply.stream and self.personal and await self._stream(reply):
            return
        for text in answer_texts(reply.text, reply.footer):
            await self.context.send_activity(message(text))

    async def _stream(self, reply: Reply) -> bool:
        """False when the whole answer cannot be one final message (it is then split and sent instead)."""
        text = escape(reply.text)
        tail = f"\n\n{footer_line(reply.footer)}" if reply.footer else ""
        if len(text) + len(tail) > TEXT_LIMIT:
            return False
        stream = self.context.streaming_response
        for chunk in re.findall(rf".{{1,{STREAM_CHUNK}}}(?:\s+|$)", text, flags=re.S) or [text]:
            stream.queue_text_chunk(chunk)
            await asyncio.sleep(0)  # the SDK's sender takes the chunk; what follows merges until its next send
        if tail:
            stream.queue_text_chunk(tail)
        await stream.end_stream()
        return True


async def send_private(context: TurnContext, activity: Activity) -> None:
    """Only the person who asked sees it: a targeted message in a channel or group chat, a plain one in 1:1."""
    if (context.activity.conversation.conversation_type or "personal") != "personal":
        activity.with_targeted_recipient(context.activity.from_property)
    await context.send_activity(activity)
