"""The dialogue around an answer, whatever the front end: ask when two readings are close, bring in a person
(asked for, urgent, failing twice), keep quiet while a person has the conversation, and take the clicks back
(a chosen intent, "Take it", feedback...). Front ends render the replies and hand clicks in as `ActionEvent`s.

A channel that can hand off also has `post_case(case) -> str | None` (posts the case to the hand-off destination,
returns where: None when no destination is configured) and `update_case(ref, case)`; one that takes feedback
reasons has `ask_feedback_reason(request_id)`.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Awaitable
from dataclasses import replace
from datetime import timedelta
from typing import Any

from bot.conversation import clarify, feedback, handoff
from bot.conversation.actions import ActionEvent, Do, split_value
from bot.conversation.bookkeeping import fail_open
from bot.conversation.core import Kind, Message, Reply
from bot.conversation.handoff import Case
from llm.adapters.base import OUT_OF_SCOPE
from llm.knowledge_base import load_knowledge_base
from llm.redact import redact
from storage.dialogue import SOMETHING_ELSE, UNDELIVERED, DialogueStore
from storage.models import utcnow

log = logging.getLogger(__name__)
FAILURES_IN_A_ROW = 2  # turns below the out-of-scope threshold or disliked, in one conversation


class Dialogue:
    def __init__(self, core: Any):
        self.core = core
        self.settings = core.settings
        self.store = DialogueStore(core.runtime.db)
        self.kb = load_knowledge_base()

    async def _quietly(self, what: str, call: Awaitable[Any], default: Any = None) -> Any:
        return await fail_open(self.core.runtime.db, what, call, default)

    def user_hash(self, user: str) -> str:
        salt = self.core.runtime.pipeline.options.user_hash_salt
        return hashlib.sha256(f"{salt}:{user}".encode()).hexdigest()[:32]

    # -- a question -----------------------------------------------------------------------------------

    async def silenced(self, message: Message) -> bool:
        """A person took a case in this conversation within HANDOFF_SILENCE_HOURS and has not resolved it."""
        if not message.conversation:
            return False
        since = utcnow() - timedelta(hours=self.settings.handoff_silence_hours)
        # an unreachable database must not silence the bot
        return await self._quietly("read hand-off cases", self.store.silencing_case(message.conversation, since)) \
            is not None

    async def turn(self, message: Message, channel: Any) -> Reply:
        if not message.conversation:
            return await self.core.ask(message, channel)
        question = redact(message.text)
        turn = {"source": message.source, "conversation": message.conversation, "question": question,
                "user_hash": self.user_hash(message.user)}
        if handoff.asks_for_person(message.text):
            turn_id = await self._quietly("store the turn", self.store.add_turn(**turn, kind="handoff"))
            return await self.hand_off(channel, turn | {"id": turn_id, "link": message.link}, handoff.ASKED)
        reply = await self.core.ask(message, channel)
        if not reply.is_answer:
            return reply
        result = reply.result
        pair = clarify.close_pair(result, self.settings.clarify_margin)
        turn |= {"request_id": result.request_id, "model": result.model, "intent": result.intent,
                 "confidence": result.confidence, "arm": (result.extra or {}).get("arm"),  # the router's arm
                 "low": result.intent == OUT_OF_SCOPE, "kind": "clarify" if pair else "answer"}
        turn_id = await self._quietly("store the turn", self.store.add_turn(**turn))
        if turn_id is None:  # the database is away: the answer, without what needs it
            return replace(reply, feedback_id=result.request_id)
        asked = None
        if pair:
            asked = await self._quietly("store the clarifying question", self.store.add_clarification(
                turn_id=turn_id, question=question, offered=",".join(pair.intents), model=result.model,
                confidences=",".join(f"{p:.4f}" for p in pair.confidences)))
        if asked is not None:
            return Reply(Kind.CLARIFY, clarify.question_text(pair, self.kb.title), result=result,
                         actions=clarify.actions(asked, pair, self.kb.title))
        if result.intent in self.settings.urgent:
            return replace(reply, actions=(handoff.person_action(handoff.URGENT, turn_id),),
                           feedback_id=result.request_id)
        if turn["low"] and await self._quietly("read the conversation's turns", self.failing(message.conversation),
                                               False):  # an answer in scope ends any run of failures: no read
            return replace(reply, text=f"{reply.text}\n\n{handoff.OFFER_AFTER_FAILURES}", feedback_id=result.request_id,
                           actions=(handoff.person_action(handoff.REPEATED_FAILURE, turn_id),))
        return replace(reply, feedback_id=result.request_id)

    async def failing(self, conversation: str) -> bool:
        """The conversation's latest turns were all below the out-of-scope threshold or disliked."""
        turns = [t for t in await self.store.last_turns(conversation, FAILURES_IN_A_ROW + 2) if t["kind"] != "handoff"]
        latest = turns[:FAILURES_IN_A_ROW]
        return len(latest) == FAILURES_IN_A_ROW and all(t["low"] or t["thumbs_down"] for t in latest)

    async def hand_off(self, channel: Any, turn: dict[str, Any], reason: str) -> Reply:
        """Open a case (one per conversation at a time) and tell the customer; the support text without a
        destination."""
        minutes = self.settings.handoff_expected_minutes
        active = await self._quietly("read hand-off cases", self.store.active_case(turn["conversation"]))
        if active is not None:
            return Reply(Kind.HANDOFF, handoff.already_open(active["id"], minutes))
        case_id = await self._quietly("open a hand-off case", self.store.open_case(
            turn_id=turn.get("id"), source=turn["source"], conversation=turn["conversation"], link=turn.get("link"),
            question=turn["question"], model=turn.get("model"), intent=turn.get("intent"), reason=reason))
        if case_id is None:  # never stuck: the way to reach a person directly
            return Reply(Kind.HANDOFF, handoff.no_destination(self.kb.support_contact))
        case = Case.of(await self.store.case(case_id))
        ref = None
        post = getattr(channel, "post_case", None)
        try:
            ref = await post(case) if post else None
        except Exception:  # noqa: BLE001 - the customer still gets the support text
            log.exception("could not post hand-off case %s", case_id)
        if ref is None:
            await self.store.update_case(case_id, status=UNDELIVERED)
            return Reply(Kind.HANDOFF, handoff.no_destination(self.kb.support_contact))
        await self.store.update_case(case_id, post_ref=ref)
        return Reply(Kind.HANDOFF, handoff.told(case_id, minutes))

    # -- a click --------------------------------------------------------------------------------------

    async def on_action(self, event: ActionEvent, channel: Any) -> None:
        """Act on a click; never raises."""
        try:
            reply = await self._act(event, channel)
            if reply is not None:
                await channel.send(reply)
        except Exception:  # noqa: BLE001 - the log has the trace
            log.exception("could not handle %s action %s", event.source, event.do)

    async def _act(self, event: ActionEvent, channel: Any) -> Reply | None:
        match event.do:
            case Do.CHOOSE | Do.SOMETHING_ELSE:
                return await self._chosen(event, channel)
            case Do.PERSON:
                reason, turn_id = split_value(event.value)
                turn = await self.store.turn(int(turn_id))
                if turn is None:
                    return None
                return await self.hand_off(channel, turn | {"link": event.link}, reason)
            case Do.TAKE | Do.RESOLVE:
                await self._case(event, channel)
                return None
            case Do.FEEDBACK:
                return await self._feedback(event, channel)
            case Do.REASON:
                reason, request_id = split_value(event.value)
                if reason in feedback.REASONS:
                    await self.store.feedback_reason(request_id=request_id, user_hash=self.user_hash(event.user),
                                                     reason=reason)
                if reason == "wanted_person":
                    turn = await self.store.turn_for_request(request_id)
                    if turn is not None:
                        return await self.hand_off(channel, turn | {"link": event.link}, "wanted_person")
                return None
        return None

    async def _chosen(self, event: ActionEvent, channel: Any) -> Reply | None:
        asked_id, _, intent = event.value.partition(":")
        asked = await self.store.clarification(int(asked_id))
        if asked is None:
            return None
        chosen = SOMETHING_ELSE if event.do is Do.SOMETHING_ELSE else intent
        if chosen != SOMETHING_ELSE and chosen not in asked["offered"].split(","):
            return None
        await self.store.choose(asked["id"], chosen, self.user_hash(event.user))
        turn = await self.store.turn(asked["turn_id"])
        if chosen == SOMETHING_ELSE:
            return Reply(Kind.OFFER, handoff.OFFER_AFTER_SOMETHING_ELSE,
                         actions=(handoff.person_action(handoff.SOMETHING_ELSE, asked["turn_id"]),))
        urgent = chosen in self.settings.urgent
        actions = (handoff.person_action(handoff.URGENT, asked["turn_id"]),) if urgent else ()
        footer = None
        if self.settings.show_model_footer:
            footer = f"{self.kb.title(chosen)} · as you chose · {asked['model']}"
        return Reply(Kind.ANSWER, self.kb.answer(chosen), footer=footer, actions=actions,
                     feedback_id=turn["request_id"] if turn else None)

    async def _case(self, event: ActionEvent, channel: Any) -> None:
        case_id = int(event.value)
        done = (await self.store.take(case_id, event.user) if event.do is Do.TAKE
                else await self.store.resolve(case_id, event.user))
        row = await self.store.case(case_id)
        if row is None:
            return
        if not done:
            log.info("case %s: %s by %s ignored (status %s)", case_id, event.do, event.user, row["status"])
        update = getattr(channel, "update_case", None)
        if update is not None:
            await update(row["post_ref"], Case.of(row))

    async def _feedback(self, event: ActionEvent, channel: Any) -> Reply | None:
        parsed = feedback.parse(event.value)
        if parsed is None:
            return None
        positive, request_id = parsed
        turn = await self.store.turn_for_request(request_id) or {}
        await self.store.give_feedback(
            request_id=request_id, user_hash=self.user_hash(event.user), positive=positive, source=event.source,
            conversation=turn.get("conversation") or event.conversation, model=turn.get("model"),
            intent=turn.get("intent"), confidence=turn.get("confidence"), arm=turn.get("arm"))
        if positive:
            return None
        ask = getattr(channel, "ask_feedback_reason", None)
        if ask is not None:
            await ask(request_id)
        conversation = turn.get("conversation")
        if conversation and turn.get("id") and await self._newest(conversation, turn["id"]) \
                and await self.failing(conversation):
            return Reply(Kind.OFFER, handoff.OFFER_AFTER_FAILURES,
                         actions=(handoff.person_action(handoff.REPEATED_FAILURE, turn["id"]),))
        return None

    async def _newest(self, conversation: str, turn_id: int) -> bool:
        latest = await self.store.last_turns(conversation, 1)
        return bool(latest) and latest[0]["id"] == turn_id
