"""message.im: answer every message a person sends the bot directly; ignore bots, edits, deletions."""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp

from bot.slack.accept import answer_claimed, claim_first
from bot.slack.context import multi_workspace
from bot.slack.reply import Question

SLACK_EVENTS = ("message.im",)


def from_a_person(event: dict, context) -> bool:
    """A plain new message by a user: no subtype (edits, deletions, joins...), no bot, not this bot."""
    return (event.get("subtype") is None and not event.get("bot_id") and bool(event.get("user"))
            and event.get("user") != context.bot_user_id)


async def is_direct_message(event, context) -> bool:
    return event.get("channel_type") == "im"


async def question_of(body, event, context, client) -> Question | None:
    if not from_a_person(event, context):
        return None
    return Question(channel=event["channel"], user=event["user"], text=(event.get("text") or "").strip(),
                    ts=event["ts"], thread_ts=event.get("thread_ts"), event_id=body.get("event_id"), direct=True,
                    workspace=multi_workspace(context))


async def on_direct_message(context, client, say_stream=None, set_status=None) -> None:
    """Runs after the ack: answers what `question_of` read and claimed before it."""
    await answer_claimed(context, client, say_stream, set_status)


def register(app: AsyncApp) -> None:
    app.event("message", matchers=[is_direct_message], middleware=[claim_first(question_of)])(on_direct_message)
