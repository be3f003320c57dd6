"""Conversation context: the earlier turns of a thread, a reply chain or a recent DM, handed to the models that
accept context (the LLMs) for the length of one request.

The caller (the conversation core) reads the turns from the database and runs the request inside
`with_history(turns)`; an LLM adapter reads `history()` while it builds its prompt. Turns are redacted before
they are stored, and the rendered context is redacted again before it is sent, so no personal data reaches a
model server. Models that classify the message alone (custom, encoder) only use `recent_intent` to place a short
follow-up they cannot place otherwise.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from llm.redact import redact

CONTEXT_TOKENS = 600  # the rendered turns are cut to about this many tokens, newest kept
FOLLOW_UP_WORDS = 8  # a follow-up is at most this many words ("and how long will the new one take?")
FOLLOW_UP_MINUTES = 10  # "a moment ago": the intent of a turn at most this old may place a follow-up


@dataclass(frozen=True)
class Turn:
    question: str  # redacted
    answer: str  # redacted: what the bot showed
    intent: str | None = None
    at: datetime | None = None


_history: ContextVar[tuple[Turn, ...]] = ContextVar("conversation_history", default=())


def history() -> tuple[Turn, ...]:
    """The current request's earlier turns, oldest first (empty outside a conversation)."""
    return _history.get()


@contextmanager
def with_history(turns: Sequence[Turn]) -> Iterator[None]:
    token = _history.set(tuple(turns))
    try:
        yield
    finally:
        _history.reset(token)


def bounded(turns: Sequence[Turn], max_tokens: int = CONTEXT_TOKENS) -> list[Turn]:
    """The newest turns whose rendered text fits in `max_tokens` (about 4 characters a token), oldest first."""
    kept: list[Turn] = []
    budget = max_tokens * 4
    for turn in reversed(turns):
        size = len(turn.question) + len(turn.answer) + 24
        if size > budget:
            break
        kept.append(turn)
        budget -= size
    return kept[::-1]


def render(turns: Sequence[Turn], max_tokens: int = CONTEXT_TOKENS) -> str:
    """The earlier turns as a transcript ("Customer: ...\\nAssistant: ..."), bounded and redacted."""
    lines = []
    for turn in bounded(turns, max_tokens):
        lines += [f"Customer: {turn.question}", f"Assistant: {turn.answer}"]
    return redact("\n".join(lines))


def with_context(question: str, turns: Sequence[Turn] | None = None) -> str:
    """The question as an LLM reads it: the conversation so far, then the new message."""
    text = render(history() if turns is None else turns)
    if not text:
        return question
    return f"Conversation so far:\n{text}\n\nNew message from the customer:\n{question}"


def recent_intent(turns: Sequence[Turn] | None = None, *, now: datetime | None = None,
                  within: timedelta = timedelta(minutes=FOLLOW_UP_MINUTES)) -> str | None:
    """The intent of the conversation's latest turn, when it was answered within `within`."""
    turns = history() if turns is None else turns
    if not turns or not turns[-1].intent or turns[-1].intent == "out_of_scope":
        return None
    at = turns[-1].at
    now = now or datetime.now(UTC)
    if at is not None and now - (at if at.tzinfo else at.replace(tzinfo=UTC)) > within:
        return None
    return turns[-1].intent


def is_follow_up(text: str) -> bool:
    """A short message that reads as the continuation of the conversation."""
    return 0 < len(text.split()) <= FOLLOW_UP_WORDS
