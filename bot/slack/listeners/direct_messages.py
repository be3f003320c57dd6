"""message.im: answer every message a person sends the bot directly; ignore bots, edits, deletions."""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp

from bot.slack.context import multi_workspace, services
from bot.slack.reply import Question, answer

SLACK_EVENTS = ("message.im",)


def from_a_person(event: dict, context) -> bool:
    """A plain new message by a user: no subtype (edits, deletions, joins...), no bot, not this bot."""
    return (event.get("subtype") is None and not event.get("bot_id") and bool(event.get("user"))
            and event.get("user") != context.bot_user_id)


async def is_direct_message(event, context) -> bool:
    return event.get("channel_type") == "im"


async def on_direct_message(body, event, context, client, say_stream=None, set_status=None) -> None:
    if not from_a_person(event, context):
        return
    question = Question(channel=event["channel"], user=event["user"], text=(event.get("text") or "").strip(),
                        ts=event["ts"], thread_ts=event.get("thread_ts"), event_id=body.get("event_id"), direct=True,
                        workspace=multi_workspace(context))
    await answer(question, services(context), client, say_stream=say_stream, set_status=set_status)


def register(app: AsyncApp) -> None:
    app.event("message", matchers=[is_direct_message])(on_direct_message)
