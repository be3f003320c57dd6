"""Answering one question in Slack: the shared conversation core (bot/conversation/) does the flow; this module
is its Slack channel: progress as assistant status or a reaction, answers posted or streamed in the thread."""

from __future__ import annotations

import logging
import re
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from slack_sdk.errors import SlackApiError, SlackRequestError
from slack_sdk.web.async_client import AsyncWebClient

from bot.conversation.core import ConversationCore, Message, Reply
from bot.slack.context import BotServices
from bot.slack.format import answer_messages, footer_block

log = logging.getLogger(__name__)

STREAM_BUFFER = 256  # characters per chat.appendStream call
PROGRESS_REACTION = "hourglass_flowing_sand"
UNSUPPORTED = {"not_allowed", "not_allowed_token_type", "unknown_method", "missing_scope", "invalid_auth",
               "method_not_supported_for_channel_type", "not_enabled", "feature_not_enabled"}


@dataclass(frozen=True)
class Question:
    channel: str
    user: str
    text: str  # without the bot's mention
    ts: str  # the user's message
    thread_ts: str | None  # where the answer goes; None: top level (a DM)
    event_id: str | None  # Slack's id of the delivery, for de-duplication
    direct: bool = False  # a DM: progress through assistant.threads.setStatus when Slack allows it


async def answer(question: Question, bot: BotServices, client: AsyncWebClient, *, say_stream: Any = None,
                 set_status: Any = None) -> None:
    """Answer once, whatever the number of deliveries; never raises."""
    message = Message(source="slack", user=question.user, text=question.text, delivery=question.event_id)
    channel = SlackChannel(question, bot, client, say_stream, set_status)
    await ConversationCore(bot.runtime, bot.work).handle(message, channel)


class SlackChannel:
    """The core's Channel for one Slack question."""

    def __init__(self, question: Question, bot: BotServices, client: AsyncWebClient, say_stream, set_status):
        self.question, self.bot, self.client = question, bot, client
        self.say_stream, self.set_status = say_stream, set_status

    @asynccontextmanager
    async def working(self):
        progress = await _show_progress(self.question, self.bot, self.client, self.set_status)
        try:
            yield
        finally:
            if progress:
                await _remove_reaction(self.client, self.question)

    async def send(self, reply: Reply) -> None:
        if not reply.is_answer:
            await post(self.client, self.question, [{"text": reply.text}])
            return
        footer = footer_block(reply.footer) if reply.footer else None
        if not (reply.stream and await _stream(self.bot, self.say_stream, reply.text, footer)):
            await post(self.client, self.question, answer_messages(reply.text, footer))


async def post(client: AsyncWebClient, question: Question, messages: list[dict[str, Any]]) -> None:
    for message in messages:
        await client.chat_postMessage(channel=question.channel, thread_ts=question.thread_ts, unfurl_links=False,
                                      unfurl_media=False, **message)


async def _show_progress(question: Question, bot: BotServices, client: AsyncWebClient, set_status) -> bool:
    """setStatus in a DM where Slack allows it (cleared by the reply), else a reaction; True when a reaction."""
    if question.direct and set_status is not None and bot.features.set_status:
        try:
            await set_status("is looking into it…")
            return False
        except SlackApiError as exc:
            error = exc.response.get("error")
            log.info("assistant.threads.setStatus refused (%s); using a reaction instead", error)
            if error in UNSUPPORTED:
                bot.features.set_status = False
        except Exception as exc:  # noqa: BLE001 - progress is cosmetic: a network error must not cost the answer
            log.info("assistant.threads.setStatus failed (%s); using a reaction instead", exc)
    try:
        await client.reactions_add(channel=question.channel, timestamp=question.ts, name=PROGRESS_REACTION)
        return True
    except SlackApiError as exc:
        log.info("could not add the progress reaction: %s", exc.response.get("error"))
        return False
    except Exception as exc:  # noqa: BLE001 - progress is cosmetic: a network error must not cost the answer
        log.info("could not add the progress reaction: %s", exc)
        return False


async def _remove_reaction(client: AsyncWebClient, question: Question) -> None:
    try:
        await client.reactions_remove(channel=question.channel, timestamp=question.ts, name=PROGRESS_REACTION)
    except SlackApiError as exc:
        log.info("could not remove the progress reaction: %s", exc.response.get("error"))
    except Exception as exc:  # noqa: BLE001 - cosmetic, as above
        log.info("could not remove the progress reaction: %s", exc)


async def _stream(bot: BotServices, say_stream, text: str, footer: dict | None) -> bool:
    """Stream a long answer with chat.*Stream; False when it was not streamed (so it must be posted)."""
    if say_stream is None or not bot.features.streaming:
        return False
    streamer = None
    try:
        streamer = await say_stream(buffer_size=STREAM_BUFFER)
        for word in re.findall(r"\S+\s*", text):
            await streamer.append(markdown_text=word)
        await streamer.stop(blocks=[footer] if footer else None)
        return True
    except (SlackApiError, SlackRequestError) as exc:
        error = exc.response.get("error") if isinstance(exc, SlackApiError) else str(exc)
        if streamer is None or streamer.ts is None:
            log.info("chat streaming refused (%s); posting answers as messages", error)
            if error in UNSUPPORTED:
                bot.features.streaming = False
        else:  # the stream broke half-way: the user still gets the whole answer, as a message
            log.warning("chat stream %s failed half-way (%s); posting the whole answer", streamer.ts, error)
        return False
