"""app_mention: answer in the thread of the mention, without the bot's own mention in the question."""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp

from bot.slack.accept import answer_claimed, claim_first
from bot.slack.context import multi_workspace
from bot.slack.format import strip_mention
from bot.slack.reply import Question

SLACK_EVENTS = ("app_mention",)  # the manifest's bot_events this listener needs


async def question_of(body, event, context, client) -> Question:
    return Question(channel=event["channel"], user=event.get("user", ""),
                    text=strip_mention(event.get("text", ""), context.bot_user_id), ts=event["ts"],
                    thread_ts=event.get("thread_ts") or event["ts"], event_id=body.get("event_id"),
                    workspace=multi_workspace(context))


async def on_mention(context, client, say_stream=None, set_status=None) -> None:
    """Runs after the ack: answers what `question_of` read and claimed before it."""
    await answer_claimed(context, client, say_stream, set_status)


def register(app: AsyncApp) -> None:
    app.event("app_mention", middleware=[claim_first(question_of)])(on_mention)
