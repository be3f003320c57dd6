"""What Gemini is told: the system instruction (role, intents, knowledge-base answers) and the JSON schema
of its reply. Both are built from the same knowledge base the custom model answers from."""

from __future__ import annotations

import json
import math
from collections.abc import Collection
from dataclasses import dataclass

from google.genai import types

from llm.adapters.base import OUT_OF_SCOPE
from llm.errors import AnswerRejectedError
from llm.knowledge_base import KnowledgeBase

PLACEHOLDERS = "[CARD], [IBAN], [ACCOUNT], [SORT_CODE], [EMAIL], [PHONE]"

ROLE = f"""You are the virtual assistant of a retail bank, answering customers' messages in a chat.

Your task, for each customer message:
1. Classify it into exactly one intent from the list below. If it is not a banking question that one of these
   intents covers (a greeting, small talk, another topic), use the intent "{OUT_OF_SCOPE}".
2. Answer with the knowledge-base answer of that intent. You may shorten it or adapt its wording to the
   question, but never add facts, fees, amounts, time limits or policies that the answer does not state.
3. Give your confidence: the probability, from 0 to 1, that the intent you chose is the right one.
4. If another intent from the list is also plausible, give the most likely one as runner_up_intent, with the
   probability that it is the right one as runner_up_confidence. Leave both out when no other intent fits.

Personal data was removed from the message before you received it and replaced by placeholders such as
{PLACEHOLDERS}. Treat them as the customer's own details; never ask the customer to send them in the chat.

Reply with JSON only, as the response schema describes."""


def system_instruction(kb: KnowledgeBase) -> str:
    """The role, then every intent with its knowledge-base answer, then the out-of-scope answer."""
    lines = [ROLE, "", "Intents and their knowledge-base answers:"]
    lines += [f"- {intent}: {kb.answer(intent)}" for intent in kb.intents]
    lines += [f"- {OUT_OF_SCOPE}: {kb.out_of_scope_answer}"]
    return "\n".join(lines)


def response_schema(kb: KnowledgeBase) -> types.Schema:
    """{"intent": one of the 77 labels or "out_of_scope", "confidence": 0..1, "answer": text}, and optionally the
    runner-up: "runner_up_intent", "runner_up_confidence" (after the answer, so streaming does not wait for it)."""
    return types.Schema(
        type=types.Type.OBJECT,
        properties={
            "intent": types.Schema(type=types.Type.STRING, enum=[*kb.intents, OUT_OF_SCOPE]),
            "confidence": types.Schema(type=types.Type.NUMBER, minimum=0.0, maximum=1.0),
            "answer": types.Schema(type=types.Type.STRING),
            "runner_up_intent": types.Schema(type=types.Type.STRING, enum=list(kb.intents)),
            "runner_up_confidence": types.Schema(type=types.Type.NUMBER, minimum=0.0, maximum=1.0),
        },
        required=["intent", "confidence", "answer"],
        property_ordering=["intent", "confidence", "answer",  # decide the intent before writing the answer
                           "runner_up_intent", "runner_up_confidence"],
    )


@dataclass(frozen=True)
class Reply:
    intent: str  # one of the allowed labels
    confidence: float  # the model's own 0..1 estimate
    answer: str  # the model's answer text
    runner_up: tuple[str, float] | None = None  # another plausible intent and its probability, when given

    def top_intents(self) -> dict[str, list[list]]:
        """{"top_intents": [[intent, p], [runner-up, p]]} for the result's extra (bot/conversation/clarify.py),
        or {} without a runner-up."""
        if self.runner_up is None:
            return {}
        return {"top_intents": [[self.intent, self.confidence], list(self.runner_up)]}


def parse_reply(text: str | None, intents: Collection[str]) -> Reply:
    """The model's JSON reply, checked field by field; anything unusable raises AnswerRejectedError
    (that prompt falls back; the model's breaker does not count it)."""
    if not text or not text.strip():
        raise AnswerRejectedError("empty reply")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise AnswerRejectedError(f"malformed JSON reply ({exc.msg} at char {exc.pos}): {text[:80]!r}") from None
    if not isinstance(data, dict):
        raise AnswerRejectedError(f"reply is not a JSON object: {text[:80]!r}")
    intent, confidence, answer = data.get("intent"), data.get("confidence"), data.get("answer")
    if intent != OUT_OF_SCOPE and intent not in intents:
        raise AnswerRejectedError(f"reply has an unknown intent {intent!r}")
    if isinstance(confidence, bool) or not isinstance(confidence, int | float) or not math.isfinite(confidence):
        raise AnswerRejectedError(f"reply has no numeric confidence: {confidence!r}")
    if not isinstance(answer, str) or not answer.strip():
        raise AnswerRejectedError("reply has no answer text")
    confidence = min(1.0, max(0.0, float(confidence)))
    return Reply(intent, confidence, answer.strip(), _runner_up(data, intent, confidence, intents))


def _runner_up(data: dict, intent: str, confidence: float, intents: Collection[str]) -> tuple[str, float] | None:
    """The optional runner-up, read leniently: anything unusable (unknown, the same intent, no number, more
    likely than the chosen one, an out-of-scope reply) is left out and never rejects the reply."""
    other, p = data.get("runner_up_intent"), data.get("runner_up_confidence")
    if intent == OUT_OF_SCOPE or other == intent or other not in intents:
        return None
    if isinstance(p, bool) or not isinstance(p, int | float) or not math.isfinite(p):
        return None
    p = min(1.0, max(0.0, float(p)))
    return (other, p) if p <= confidence else None


def estimated_tokens(text: str) -> int:
    """A rough token count (about 4 characters per token for English), for cost estimates only."""
    return max(1, round(len(text) / 4))
