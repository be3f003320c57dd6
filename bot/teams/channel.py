"""The conversation core's Channel for one Teams message: a typing indicator while the model works, long answers
streamed through the SDK's StreamingResponse in 1:1 chats (Teams streams nowhere else), everything else sent as
messages split under Teams' size limit, in the message's reply chain. A reply's buttons and feedback controls
ride on its (last) message as an Adaptive Card (bot/teams/dialogue_cards.py); hand-off cases go to
TEAMS_HANDOFF_CONVERSATION."""

from __future__ import annotations

import asyncio
import json
import re
from contextlib import asynccontextmanager

from microsoft_agents.activity import Activity, ConversationAccount
from microsoft_agents.hosting.core import ClaimsIdentity, TurnContext
from microsoft_agents.hosting.core.app import TypingIndicator, TypingOptions
from microsoft_agents.hosting.core.connector import ConnectorClientBase

from bot.conversation.core import Reply
from bot.conversation.sweeper import resume
from bot.teams import dialogue_cards as cards
from bot.teams.format import TEXT_LIMIT, answer_texts, escape, footer_line, message

TYPING = TypingOptions(initial_delay_ms=0, interval_ms=3000)  # at once, then while the model works
CONTENT_FIELDS = {"text", "attachments", "entities", "value", "speak", "summary", "text_format"}  # not stored
STREAM_CHUNK = 400  # characters per queued chunk; the SDK merges what is queued between its 1 s sends


class TeamsChannel:
    def __init__(self, context: TurnContext, conversation_type: str, handoff_conversation: str | None = None):
        self.context = context
        self.personal = conversation_type == "personal"
        self.handoff_conversation = handoff_conversation  # TEAMS_HANDOFF_CONVERSATION

    @asynccontextmanager
    async def working(self):
        async with TypingIndicator(self.context, typing_options=TYPING):
            yield

    async def open_stream(self) -> TeamsLiveStream | None:
        """An answer streamed as the model writes it (bot/conversation/relay.py): 1:1 chats only, where Teams
        streams."""
        if not self.personal:
            return None
        self.live = TeamsLiveStream(self.context.streaming_response)
        return self.live

    async def send(self, reply: Reply) -> str | None:
        """Returns the id of the first activity sent (the durable claim records it)."""
        controls = cards.controls_card(reply.actions, reply.feedback_id)
        live, self.live = getattr(self, "live", None), None
        if live is not None:  # the answer (or what was shown of it) went out on a stream: finish that stream
            tail = f"\n\n{footer_line(reply.footer)}" if reply.footer and reply.sink is not None else ""
            await live.finish(tail, controls if reply.sink is not None else None)
            if reply.sink is not None:
                return getattr(self.context.streaming_response, "_stream_id", None) or "streamed"
        if not reply.is_answer:
            return _id(await self.context.send_activity(_with(message(escape(reply.text), reply.suggestions),
                                                              controls)))
        if reply.stream and self.personal and await self._stream(reply, controls):
            return getattr(self.context.streaming_response, "_stream_id", None) or "streamed"
        texts = answer_texts(reply.text, reply.footer)
        ids = [_id(await self.context.send_activity(_with(message(text), controls if n == len(texts) - 1 else None)))
               for n, text in enumerate(texts)]
        return next((i for i in ids if i), None)

    async def post_case(self, case) -> str | None:
        """A hand-off case in TEAMS_HANDOFF_CONVERSATION; returns "<conversation>|<activity id>", or None without
        a destination."""
        conversation = self.handoff_conversation
        if not conversation:
            return None
        activity = cards.case_activity(case)
        activity.conversation = ConversationAccount(id=conversation)
        activity.from_property = self.context.activity.recipient
        response = await self._conversations().send_to_conversation(conversation, activity)
        return f"{conversation}|{response.id}"

    async def update_case(self, ref: str | None, case) -> None:
        conversation, _, activity_id = (ref or "").rpartition("|")
        if conversation and activity_id:
            activity = cards.case_activity(case)
            activity.id = activity_id
            activity.conversation = ConversationAccount(id=conversation)
            await self._conversations().update_activity(conversation, activity_id, activity)

    async def ask_feedback_reason(self, request_id: str) -> None:
        """The reason card, to the person who gave the thumbs-down only."""
        await send_private(self.context, _with(message(""), cards.reason_card(request_id)))

    def _conversations(self):
        return self.context.services.get(ConnectorClientBase).conversations

    def reference(self) -> dict:
        kind = "personal" if self.personal else (self.context.activity.conversation.conversation_type or "personal")
        return Inbound(self.context.activity, getattr(self.context, "identity", None), kind).reference()

    async def _stream(self, reply: Reply, controls: dict | None = None) -> bool:
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
        if controls:
            stream.set_attachments([cards.attachment(controls)])
        await stream.end_stream()
        return True


class Inbound:
    """A message as it arrives, before any turn: where its answer will go, for the durable claim."""

    def __init__(self, activity: Activity, identity: ClaimsIdentity | None, kind: str):
        self.activity, self.identity, self.kind = activity, identity, kind

    def reference(self) -> dict:
        """Where to answer, kept with the durable claim: the conversation reference without the message's
        content, and the inbound token's claims (not the token), to continue the conversation from another
        replica."""
        activity = self.activity.model_dump(mode="json", by_alias=True, exclude_none=True, exclude=CONTENT_FIELDS)
        identity = self.identity
        return {"activity": activity, "claims": dict(identity.claims) if identity else {},
                "auth": identity.authentication_type if identity else None, "kind": self.kind}


class TeamsLiveStream:
    """The SDK's StreamingResponse fed with deltas as they arrive; Teams sends what is queued about once a second."""

    def __init__(self, stream):
        self.stream = stream
        self.text = ""

    async def append(self, text: str) -> None:
        self.text += text
        self.stream.queue_text_chunk(escape(text))
        await asyncio.sleep(0)  # the SDK's sender takes the chunk

    async def finish(self, tail: str, controls: dict | None) -> None:
        if tail:
            self.stream.queue_text_chunk(tail)
        if controls:
            self.stream.set_attachments([cards.attachment(controls)])
        await self.stream.end_stream()


def _with(activity: Activity, card: dict | None) -> Activity:
    if card:
        activity.attachments = [cards.attachment(card)]
    return activity


def _id(response) -> str | None:
    return getattr(response, "id", None) if response is not None else None


async def resume_question(claim, front_end) -> None:
    """Answer a question taken over from a replica that died (bot/conversation/sweeper.py): a proactive turn
    continuing the stored conversation reference, as the first answer would have been."""
    where = json.loads(claim.reference)
    activity = Activity.model_validate(where["activity"])
    if not front_end.validator.is_allowed(activity.service_url):  # never post elsewhere
        raise ValueError(f"serviceUrl {activity.service_url} is not allowed")
    identity = ClaimsIdentity(where.get("claims") or {}, where.get("auth"))

    async def turn(context: TurnContext) -> None:
        await resume(front_end.core, claim, TeamsChannel(context, where.get("kind", "personal"),
                                                         front_end.runtime.settings.teams_handoff_conversation))

    await front_end.adapter.continue_conversation_with_claims(identity, activity, turn)


async def send_private(context: TurnContext, activity: Activity) -> None:
    """Only the person who asked sees it: a targeted message in a channel or group chat, a plain one in 1:1."""
    if (context.activity.conversation.conversation_type or "personal") != "personal":
        activity.with_targeted_recipient(context.activity.from_property)
    await context.send_activity(activity)
