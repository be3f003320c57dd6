"""The conversation flow every front end shares: claim the delivery once, screen the text, ask the pipeline,
and hand a neutral `Reply` to the front end's `Channel`, which renders it (Block Kit, Adaptive Cards...).

Knows no Slack and no Teams: a front end builds a `Message` and a `Channel`, calls `accept` (the claim) before it
acknowledges the delivery and `respond` after.
"""

from __future__ import annotations

import logging
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from bot.conversation.context import ConversationContext
from bot.conversation.durable import claims_of
from bot.conversation.messages import EXAMPLES, HELP, apology, footer_text, too_long, unreadable
from bot.conversation.relay import Relay
from bot.warmup import WARMING_UP
from llm.adapters.base import GenerationResult
from llm.context import with_history
from llm.errors import AllModelsFailedError, InvalidPromptError
from llm.pipeline import RequestContext
from llm.streaming import AnswerInterruptedError, generate_stream

log = logging.getLogger(__name__)

STREAM_MIN_CHARS = 500  # answers at least this long are streamed where the channel allows it


@dataclass(frozen=True)
class Message:
    source: str  # the front end ("slack", "teams"): request rows and rate-limit keys carry it
    user: str  # the front end's id of the person
    text: str  # the question, without the bot's mention
    conversation: str | None = None  # thread / conversation key (hand-offs, clarifications); None: no dialogue
    link: str | None = None  # a link to the conversation, for a hand-off case
    delivery: str | None = None  # de-duplication key, the same for every re-delivery; None: not de-duplicated
    direct: bool = False  # a top-level DM (no thread): only turns within CONTEXT_WINDOW_MIN are its context


class Kind(StrEnum):
    ANSWER = "answer"
    HELP = "help"
    TOO_LONG = "too_long"
    RATE_LIMITED = "rate_limited"
    UNREADABLE = "unreadable"
    WARMING_UP = "warming_up"
    APOLOGY = "apology"
    CLARIFY = "clarify"  # "Do you mean ...?" (bot/conversation/dialogue.py)
    HANDOFF = "handoff"  # a person is coming, or how to reach one
    OFFER = "offer"  # would you like a person?
    SILENT = "silent"  # a person has this conversation: nothing is sent


@dataclass(frozen=True)
class Reply:
    kind: Kind
    text: str
    result: Any = None  # the pipeline's GenerationResult for an answer (model, latency, confidence)
    footer: str | None = None  # the footer facts, when SHOW_MODEL_FOOTER is on and this is an answer
    stream: bool = False  # a long answer: stream it where the channel can
    suggestions: tuple[str, ...] = ()  # follow-up questions a channel may offer as buttons
    actions: tuple[Any, ...] = ()  # buttons (bot/conversation/actions.py's Action)
    feedback_id: str | None = None  # the answer's request id: the channel shows feedback controls for it
    sink: Any = None  # the open stream the answer went out on (bot/conversation/relay.py): `send` finishes it

    @property
    def is_answer(self) -> bool:
        return self.kind is Kind.ANSWER


class Channel(Protocol):
    """Where a reply goes: a Slack thread, a Teams conversation.

    A channel that can be answered later, by another replica, also has `reference() -> dict` (where to answer,
    as JSON-able data, stored with the durable claim) and may have `find_posted() -> str | None` (the id of an
    answer already in the thread, where the front end's API shows it; bot/conversation/sweeper.py)."""

    def working(self) -> AbstractAsyncContextManager[Any]:
        """Progress shown while the model works (a reaction, a typing indicator); the reply is sent inside."""

    async def send(self, reply: Reply) -> str | None:
        """Send the reply; returns the id of the (first) message posted, when the front end gives one."""


class ConversationCore:
    def __init__(self, runtime: Any, work: Any):
        self.runtime = runtime  # bot.runtime.Runtime
        self.work = work  # bot.inflight.Work of the front end: counts answers sent without a claim

    @property
    def settings(self) -> Any:
        return self.runtime.settings

    async def accept(self, message: Message, channel: Channel) -> bool:
        """Claim the delivery, recording the work where the channel has a reference; False when another delivery
        of it was claimed first. A front end calls it before it acknowledges the delivery (the platform then
        never re-delivers), and `respond` after: a replica killed in between leaves a claim another answers."""
        if message.delivery and not await self.claim(message.delivery, message, channel):
            log.info("%s delivery %s was already handled (a retry or a duplicate delivery); not answering again",
                     message.source, message.delivery)
            return False
        return True

    async def respond(self, message: Message, channel: Channel, *, resumed: bool = False) -> bool:
        """Screen, ask, send; a durable claim this replica holds moves to `answering` (checked again right before
        the post: it still holds it, and its lease is renewed), then `answered` with the posted message's id (or
        `failed`). `resumed`: a question taken over from a dead replica (its rate limit
        was counted when it arrived). True when a reply was sent; never raises."""
        book = claims_of(self.runtime)
        key = message.delivery if message.delivery in book.held else None
        if key and not await self._settled(book, key):
            return False
        try:
            reply = await self.screen(message, rate_limit=not resumed)
            if reply is not None:
                return await self._deliver(channel, reply, key)
            if key and not await book.answering(key):
                return self._lost(book, key)
            async with channel.working():
                reply = await self.converse(message, channel)
                if key and not await book.answering(key):  # stalled past the lease: another replica answers
                    return self._lost(book, key)
                return await self._deliver(channel, reply, key)
        except Exception as exc:  # noqa: BLE001 - a front end's failure must not escape into the framework's logs only
            log.exception("could not answer %s delivery %s", message.source, message.delivery)
            if key:
                await book.finish(key, reason=f"{type(exc).__name__}: {exc}"[:200])
            return False

    async def _deliver(self, channel: Channel, reply: Reply, key: str | None) -> bool:
        message_id = None if reply.kind is Kind.SILENT else await channel.send(reply)
        if key:
            book = claims_of(self.runtime)
            await book.finish(key, message_id=message_id)
        return True

    async def _settled(self, book: Any, key: str) -> bool:
        """False when the claim that was still being written at the ack went to another delivery of the message."""
        won = await book.settle(key)
        if won is None:
            self.work.unclaimed_answers += 1
        elif not won:
            log.info("delivery %s was claimed by another delivery of it meanwhile; not answering again", key)
        return won is not False

    @staticmethod
    def _lost(book: Any, key: str) -> bool:
        log.warning("delivery %s was taken over by another replica while this one worked on it; not answering", key)
        book.drop(key)
        return False

    async def claim(self, key: str, message: Message | None = None, channel: Channel | None = None) -> bool:
        """The de-duplication claim across replicas; durable (it records the work, bot/conversation/durable.py)
        when the channel has a reference. It fails open: while the database is unreachable the message
        is answered unclaimed (counted), so an outage loses no answer; only a re-delivery of the same message that
        arrives during the outage can then be answered twice."""
        try:
            reference = getattr(channel, "reference", None)
            if message is not None and reference is not None:
                return await claims_of(self.runtime).claim(key, message, reference())
            return await self.runtime.db.claim_event(key)
        except Exception as exc:  # noqa: BLE001 - an unreachable database must not cost the user the answer
            self.work.unclaimed_answers += 1
            log.warning("could not claim delivery %s (%s: %s); answering it unclaimed", key, type(exc).__name__,
                        (str(exc).splitlines() or [""])[0][:200])
            return True

    async def screen(self, message: Message, *, rate_limit: bool = True) -> Reply | None:
        """A reply without any model (help, too long, rate limited), or None when the question may go on."""
        limit = self.settings.max_prompt_chars
        if await self.dialogue.silenced(message):
            return Reply(Kind.SILENT, "")
        if not message.text:
            return Reply(Kind.HELP, HELP, suggestions=EXAMPLES)
        if len(message.text) > limit:
            return Reply(Kind.TOO_LONG, too_long(len(message.text), limit))
        if not rate_limit:
            return None
        user_key = message.user if message.source == "slack" else f"{message.source}:{message.user}"
        allowance = await self.runtime.rate_limiter.check_slack_user(user_key)
        if not allowance.allowed:
            return Reply(Kind.RATE_LIMITED, allowance.message)
        return None

    @property
    def dialogue(self) -> Any:
        from bot.conversation.dialogue import Dialogue  # it builds on this module's Reply

        return Dialogue(self)

    async def converse(self, message: Message, channel: Channel) -> Reply:
        """The answer with the dialogue around it (bot/conversation/dialogue.py): clarify, hand off, feedback."""
        return await self.dialogue.turn(message, channel)

    async def ask(self, message: Message, channel: Channel | None = None) -> Reply:
        """The pipeline's answer, streamed to `channel` as the model writes it where the channel can stream and the
        answer is long (else posted whole by `send`), or the reply that stands for it when no model could answer.
        The conversation's earlier turns go to the models as context, and this turn is kept for the next."""
        context = RequestContext(source=message.source, user_id=message.user)
        memory = ConversationContext(self.runtime)
        relay = Relay(channel, self.settings.stream_min_chars)
        result = None
        try:
            with with_history(await memory.turns(message)):
                async for item in generate_stream(self.runtime.pipeline, message.text, context):
                    if isinstance(item, GenerationResult):
                        result = item
                    else:
                        await relay.send(item)
        except AnswerInterruptedError as exc:  # part of the answer is out: it ends with the apology line
            log.error("request %s: %s", context.request_id, exc)
            return Reply(Kind.APOLOGY, exc.shown, sink=relay.sink)
        except AllModelsFailedError as exc:
            log.error("request %s: every model failed: %s", context.request_id, exc.failures)
            if self.runtime.warming_up():
                return Reply(Kind.WARMING_UP, WARMING_UP)
            return Reply(Kind.APOLOGY, apology(context.request_id))
        except InvalidPromptError as exc:
            return Reply(Kind.UNREADABLE, unreadable(exc))
        except Exception:  # noqa: BLE001 - the user gets the apology; the log gets the stack trace
            log.exception("request %s failed", context.request_id)
            return Reply(Kind.APOLOGY, apology(context.request_id))
        assert result is not None
        await memory.remember(message, result.text, result.intent, result.model)
        footer = footer_text(result) if self.settings.show_model_footer else None
        return Reply(Kind.ANSWER, result.text, result=result, footer=footer,
                     stream=len(result.text) >= STREAM_MIN_CHARS, sink=relay.sink)
