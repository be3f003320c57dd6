"""Thread follow-ups: a message in a channel thread where the bot has answered is answered without a mention.

Whether the bot answered there is read from Slack (conversations.replies), so every replica agrees.
"""

from __future__ import annotations

import asyncio
import logging

from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError

from bot.slack.accept import answer_claimed, claim_first
from bot.slack.context import multi_workspace
from bot.slack.format import mentions
from bot.slack.listeners.direct_messages import from_a_person
from bot.slack.reply import Question

log = logging.getLogger(__name__)
SLACK_EVENTS = ("message.channels", "message.groups")
CHECK_S = 1.5  # the most the ack waits for conversations.replies (Slack allows 3 s; the claim gets the rest)


async def is_thread_reply(event, context) -> bool:
    thread_ts = event.get("thread_ts")
    return (event.get("channel_type") in ("channel", "group") and bool(thread_ts)
            and thread_ts != event.get("ts")
            and not mentions(event.get("text", ""), context.bot_user_id))  # a mention is app_mention's


async def bot_answered_in(client, channel: str, thread_ts: str, context) -> bool:
    try:
        replies = await client.conversations_replies(channel=channel, ts=thread_ts, limit=200)
    except SlackApiError as exc:
        log.info("conversations.replies failed in %s: %s", channel, exc.response.get("error"))
        return False
    return any(m.get("user") == context.bot_user_id or (context.bot_id and m.get("bot_id") == context.bot_id)
               for m in replies.get("messages", []))


async def question_of(body, event, context, client) -> Question | None:
    """A person's message in a thread the bot answered in (read from Slack before the ack, so the claim is only
    ever of a question the bot answers). Slack waits 3 s for the ack: a thread that cannot be read within
    CHECK_S is left alone (a mention there is always answered)."""
    if not from_a_person(event, context):
        return None
    try:
        async with asyncio.timeout(CHECK_S):
            answered = await bot_answered_in(client, event["channel"], event["thread_ts"], context)
    except TimeoutError:
        log.warning("could not read thread %s in %s within %.1f s; not answering the follow-up there",
                    event["thread_ts"], event["channel"], CHECK_S)
        return None
    if not answered:
        return None
    return Question(channel=event["channel"], user=event["user"], text=(event.get("text") or "").strip(),
                    ts=event["ts"], thread_ts=event["thread_ts"], event_id=body.get("event_id"),
                    workspace=multi_workspace(context))


async def on_thread_reply(context, client, say_stream=None, set_status=None) -> None:
    """Runs after the ack: answers what `question_of` read and claimed before it."""
    await answer_claimed(context, client, say_stream, set_status)


def register(app: AsyncApp) -> None:
    app.event("message", matchers=[is_thread_reply], middleware=[claim_first(question_of)])(on_thread_reply)
