"""Answering one question in Slack: the shared conversation core (bot/conversation/) does the flow; this module
is its Slack channel: progress as assistant status or a reaction, answers posted or streamed in the thread."""

from __future__ import annotations

import json
import logging
import re
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from typing import Any

from slack_bolt.context.async_context import AsyncBoltContext
from slack_sdk.errors import SlackApiError, SlackRequestError
from slack_sdk.web.async_client import AsyncWebClient

from bot.conversation.core import ConversationCore, Message, Reply
from bot.conversation.sweeper import resume
from bot.slack import dialogue_blocks as dialogue
from bot.slack.context import BotServices
from bot.slack.format import answer_messages, escape, footer_block
from bot.slack.live_stream import LIVE_BUFFER, SlackStream

log = logging.getLogger(__name__)

STREAM_BUFFER = 256  # characters per chat.appendStream call
PROGRESS_REACTION = "hourglass_flowing_sand"
LOADING_MESSAGES = ("Reading your question…", "Checking our help articles…", "Writing the answer…")
EXPIRED = "message_not_in_streaming_state"  # the stream expired half-way: finish it with chat.update
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
    workspace: str | None = None  # "enterprise:team" when installed in many workspaces (bot/slack/context.py)

    @property
    def keyed(self) -> tuple[str, str | None]:
        """(user, delivery) for the core: with many workspaces both carry the workspace, so de-duplication and
        rate limits are per workspace; in single-workspace mode they are Slack's ids as they are."""
        if not self.workspace:
            return self.user, self.event_id
        return f"{self.workspace}:{self.user}", self.event_id and f"{self.workspace}:{self.event_id}"


async def accept(question: Question, bot: BotServices, client: AsyncWebClient) -> bool:
    """The durable claim of the question (bot/slack/accept.py calls it before bolt's ack); False: a re-delivery."""
    channel = SlackChannel(question, bot, client, None, None)
    return await ConversationCore(bot.runtime, bot.work).accept(_message(question), channel)


async def answer(question: Question, bot: BotServices, client: AsyncWebClient, *, say_stream: Any = None,
                 set_status: Any = None) -> None:
    """Answer a question `accept` claimed (after the ack); never raises."""
    channel = SlackChannel(question, bot, client, say_stream, set_status)
    await ConversationCore(bot.runtime, bot.work).respond(_message(question), channel)


def _message(question: Question) -> Message:
    user, delivery = question.keyed
    return Message(source="slack", user=user, text=question.text, delivery=delivery, direct=question.thread_ts is None,
                   conversation=dialogue.conversation_key(question.channel, question.thread_ts, question.workspace),
                   link=dialogue.thread_link(question.channel, question.thread_ts, question.ts))


async def resume_question(claim: Any, bot: BotServices, app: Any) -> None:
    """Answer a question taken over from a replica that died (bot/conversation/sweeper.py), from its stored
    reference: posted in its thread, never streamed; with many installs, with its workspace's own token."""
    where = json.loads(claim.reference)
    question = Question(channel=where["channel"], user=claim.user_id, text=claim.question, ts=where["ts"],
                        thread_ts=where.get("thread_ts"), event_id=claim.key, direct=where.get("direct", False),
                        workspace=where.get("workspace"))
    client = await workspace_client(app, question.workspace)
    await resume(ConversationCore(bot.runtime, bot.work), claim, SlackChannel(question, bot, client, None, None))


async def workspace_client(app: Any, workspace: str | None) -> AsyncWebClient:
    """The AsyncApp's client, or with many installs ("enterprise:team") one with that workspace's bot token, found
    (and refreshed, where it rotates) as bolt does for a live event; LookupError when it is no longer installed."""
    flow = app.oauth_flow
    if not workspace or flow is None:
        return app.client
    enterprise, _, team = workspace.partition(":")
    context = AsyncBoltContext(client=app.client)  # authorize checks the token with auth.test through it
    found = await flow.settings.authorize(context=context, enterprise_id=enterprise or None, team_id=team or None,
                                          user_id=None)
    if found is None or not found.bot_token:
        raise LookupError(f"the app is no longer installed in workspace {workspace}")
    base = app.client
    return AsyncWebClient(token=found.bot_token, base_url=base.base_url, retry_handlers=base.retry_handlers)


class SlackChannel:
    """The core's Channel for one Slack question."""

    def __init__(self, question: Question, bot: BotServices, client: AsyncWebClient, say_stream, set_status):
        self.question, self.bot, self.client = question, bot, client
        self.say_stream, self.set_status = say_stream, set_status
        self.live: SlackStream | None = None  # the stream an answer is going out on, until `send` finishes it

    @asynccontextmanager
    async def working(self):
        progress = await _show_progress(self.question, self.bot, self.client, self.set_status)
        try:
            yield
        finally:
            if progress:
                await _remove_reaction(self.client, self.question)

    async def open_stream(self) -> SlackStream | None:
        """A stream in the question's thread for an answer being written (bot/conversation/relay.py); None where
        Slack does not stream here."""
        features = self.bot.features_of(self.question.workspace)
        if self.say_stream is None or not features.streaming:
            return None
        stream = SlackStream(await self.say_stream(buffer_size=LIVE_BUFFER))
        self.live = stream
        return stream

    async def _finish_live(self, reply: Reply) -> str | None:
        """Finish the stream the answer went out on: its footer and controls under it; chat.update for one that
        expired; None when it must be posted instead."""
        stream: SlackStream = self.live
        self.live = None
        footer = footer_block(reply.footer) if reply.footer and reply.is_answer else None
        if stream.ts is None:  # Slack refused at the start: nothing was shown
            if stream.broken in UNSUPPORTED:
                self.bot.features_of(self.question.workspace).streaming = False
            return None
        controls = dialogue.with_controls([{"text": "", "blocks": [footer] if footer else []}], reply.actions,
                                          reply.feedback_id)
        blocks = [b for message in controls for b in message.get("blocks", [])] or None
        if await stream.stop(blocks):
            return stream.ts
        if stream.broken == EXPIRED and await _finish_expired(self, stream.ts, stream.text, footer):
            return stream.ts
        log.warning("chat stream %s failed (%s); posting the whole answer", stream.ts, stream.broken)
        return None

    async def send(self, reply: Reply) -> str | None:
        """Returns the ts of the first message posted (the durable claim records it)."""
        if getattr(self, "live", None) is not None:
            live_ts = await self._finish_live(reply if reply.sink is not None else Reply(reply.kind, ""))
            if reply.sink is not None:
                if live_ts is not None:
                    return live_ts
                reply = replace(reply, text=reply.sink.text) if not reply.is_answer else reply
        if not reply.is_answer:
            return await post(self.client, self.question, dialogue.with_controls([{"text": reply.text}],
                                                                                reply.actions, None))
        footer = footer_block(reply.footer) if reply.footer else None
        long = len(reply.text) > self.bot.settings.stream_min_chars  # STREAM_MIN_CHARS: shorter ones are posted
        if long and (streamed := await _stream(self.bot, self.say_stream, reply.text, footer, self)):
            return streamed
        return await post(self.client, self.question, dialogue.with_controls(
            answer_messages(reply.text, footer), reply.actions, reply.feedback_id))

    async def post_case(self, case: Any) -> str | None:
        """A hand-off case in HANDOFF_CHANNEL; returns "channel:ts", or None without a destination."""
        channel = self.bot.settings.handoff_channel
        if not channel:
            return None
        response = await self.client.chat_postMessage(channel=channel, unfurl_links=False,
                                                      **dialogue.case_message(case))
        return f"{channel}:{response['ts']}"

    async def update_case(self, ref: str | None, case: Any) -> None:
        if ref:
            channel, _, ts = ref.partition(":")
            await self.client.chat_update(channel=channel, ts=ts, **dialogue.case_message(case))

    def reference(self) -> dict[str, Any]:
        """Where to answer, kept with the durable claim (no text: the claim keeps the question redacted)."""
        q = self.question
        return {"channel": q.channel, "ts": q.ts, "thread_ts": q.thread_ts, "direct": q.direct,
                "workspace": q.workspace}

    async def find_posted(self) -> str | None:
        """The ts of this bot's answer already in the question's thread, if any (a replica died between posting
        it and recording it). Top-level DMs have no thread to read: there the recorded ts is the only guard."""
        q = self.question
        if not q.thread_ts:
            return None
        me = (await self.client.auth_test()).get("user_id")
        replies = await self.client.conversations_replies(channel=q.channel, ts=q.thread_ts, limit=200)
        for message in replies.get("messages", []):
            after = q.thread_ts == q.ts or float(message["ts"]) > float(q.ts)  # a mention starts its own thread
            if message["ts"] != q.ts and message.get("bot_id") and message.get("user") == me and after:
                return message["ts"]
        return None


async def post(client: AsyncWebClient, question: Question, messages: list[dict[str, Any]]) -> str | None:
    first = None
    for message in messages:
        response = await client.chat_postMessage(channel=question.channel, thread_ts=question.thread_ts,
                                                 unfurl_links=False, unfurl_media=False, **message)
        first = first or response.get("ts")
    return first


async def _show_progress(question: Question, bot: BotServices, client: AsyncWebClient, set_status) -> bool:
    """setStatus (with loading messages) in a DM or a channel thread where Slack allows it (cleared by the reply),
    else a reaction; True when a reaction."""
    features = bot.features_of(question.workspace)
    allowed = features.set_status if question.direct else features.channel_status
    if set_status is not None and allowed:
        try:
            await set_status("is looking into it…", loading_messages=list(LOADING_MESSAGES))
            return False
        except SlackApiError as exc:
            error = exc.response.get("error")
            log.info("assistant.threads.setStatus refused (%s); using a reaction instead", error)
            if error in UNSUPPORTED and question.direct:
                features.set_status = False
            elif error in UNSUPPORTED:
                features.channel_status = False
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


async def _stream(bot: BotServices, say_stream, text: str, footer: dict | None,
                  channel: SlackChannel) -> str | None:
    """Stream a long answer with chat.*Stream; its ts, or None when it was not streamed (so it must be posted).

    A stream that expires half-way (message_not_in_streaming_state) is finished with chat.update on its ts: the
    whole answer, once, in the message the user already sees."""
    features = bot.features_of(channel.question.workspace)
    if say_stream is None or not features.streaming:
        return None
    streamer = None
    try:
        streamer = await say_stream(buffer_size=STREAM_BUFFER)
        for word in re.findall(r"\S+\s*", text):
            await streamer.append(markdown_text=word)
        await streamer.stop(blocks=[footer] if footer else None)
        return streamer.ts or "streamed"
    except (SlackApiError, SlackRequestError) as exc:
        error = exc.response.get("error") if isinstance(exc, SlackApiError) else str(exc)
        if streamer is None or streamer.ts is None:
            log.info("chat streaming refused (%s); posting answers as messages", error)
            if error in UNSUPPORTED:
                features.streaming = False
            return None
        if error == EXPIRED and await _finish_expired(channel, streamer.ts, text, footer):
            return streamer.ts
        log.warning("chat stream %s failed half-way (%s); posting the whole answer", streamer.ts, error)
        return None


async def _finish_expired(channel: SlackChannel, ts: str, text: str, footer: dict | None) -> bool:
    """chat.update of the expired stream's message with the whole answer; False when Slack refuses it too."""
    blocks = [block for message in answer_messages(text, footer) for block in message["blocks"]]
    try:
        await channel.client.chat_update(channel=channel.question.channel, ts=ts, text=escape(text), blocks=blocks)
    except SlackApiError as exc:
        log.warning("could not finish the expired stream %s with chat.update: %s", ts, exc.response.get("error"))
        return False
    log.info("chat stream %s expired half-way; finished it with chat.update", ts)
    return True
