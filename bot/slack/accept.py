"""Claim before the ack. Slack never re-delivers an event it got a 200 for, so the durable claim (the question,
redacted, and where to answer) is written before bolt acknowledges the event: a replica killed right after its
ack leaves a claim whose lease runs out, and another replica's sweeper answers it (bot/conversation/sweeper.py).

`claim_first(read)` is a listener middleware: bolt runs it after the listener's matchers and before the
listener's automatic ack. It reads the question (`read` returns None for a message the bot does not answer),
claims it, and leaves the claimed question in the context; the listener, `answer_claimed`, runs after the ack and
answers it. A re-delivery of a claimed event finds nothing to answer and is acknowledged all the same.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from bot.slack.context import services
from bot.slack.reply import Question, accept, answer

CLAIMED_KEY = "bankbot_claimed"  # bolt context: the Question this delivery claimed, or None

Reader = Callable[[dict, dict, Any, Any], Awaitable[Question | None]]  # (body, event, context, client)


def claim_first(read: Reader) -> Callable[..., Awaitable[None]]:
    async def claim_before_ack(body, event, context, client, next) -> None:  # bolt injects `next`
        question = await read(body, event, context, client)
        won = question is not None and await accept(question, services(context), client)
        context[CLAIMED_KEY] = question if won else None
        await next()

    return claim_before_ack


async def answer_claimed(context, client, say_stream=None, set_status=None) -> None:
    """The listener: answers the question `claim_first` claimed (nothing for a re-delivery or another's message)."""
    question = context.get(CLAIMED_KEY)
    if question is not None:
        await answer(question, services(context), client, say_stream=say_stream, set_status=set_status)
