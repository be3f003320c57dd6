"""Clicks on the dialogue's buttons (block_actions): a chosen intent, "Something else", "Talk to a person",
"Take it" / "Resolved" on a hand-off case, the feedback buttons; and the thumbs-down reason modal
(view_submission). Each is acknowledged at once and handed to the conversation core (bot/conversation/dialogue.py).
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError

from bot.conversation.actions import ActionEvent, Do
from bot.conversation.core import ConversationCore
from bot.conversation.dialogue import Dialogue
from bot.slack import dialogue_blocks as blocks
from bot.slack.context import BotServices, multi_workspace, services
from bot.slack.reply import Question, SlackChannel

log = logging.getLogger(__name__)
SLACK_EVENTS = ()  # interactivity: block_actions and view_submission (the manifest's interactivity section)


class ActionChannel(SlackChannel):
    """Replies to a click go to the clicked message's thread; a thumbs-down opens the reason modal."""

    def __init__(self, question: Question, bot: BotServices, client, trigger_id: str | None):
        super().__init__(question, bot, client, None, None)
        self.trigger_id = trigger_id

    async def ask_feedback_reason(self, request_id: str) -> None:
        if not self.trigger_id:
            return
        where = {"channel": self.question.channel, "thread_ts": self.question.thread_ts, "ts": self.question.ts}
        try:
            await self.client.views_open(trigger_id=self.trigger_id, view=blocks.reason_modal(request_id, where))
        except SlackApiError as exc:  # the reason is optional: the thumbs-down is stored already
            log.info("could not open the feedback reason modal: %s", exc.response.get("error"))


def _user(body: dict[str, Any], context) -> str:
    user = (body.get("user") or {}).get("id", "")
    workspace = multi_workspace(context)
    return f"{workspace}:{user}" if workspace else user


def _event(do: Do, value: str, user: str, channel: str, thread_ts: str | None, ts: str, context) -> ActionEvent:
    return ActionEvent(source="slack", user=user, do=do, value=value,
                       conversation=blocks.conversation_key(channel, thread_ts, multi_workspace(context)),
                       link=blocks.thread_link(channel, thread_ts, ts))


async def on_action(ack, body, action, context, client) -> None:
    await ack()
    do = blocks.do_of(action.get("action_id", ""))
    message = body.get("message") or {}
    channel = (body.get("channel") or {}).get("id") or (body.get("container") or {}).get("channel_id")
    if do is None or not channel or not message.get("ts"):
        return
    bot = services(context)
    thread_ts = message.get("thread_ts")
    question = Question(channel=channel, user=(body.get("user") or {}).get("id", ""), text="", ts=message["ts"],
                        thread_ts=thread_ts, event_id=None, workspace=multi_workspace(context))
    event = _event(do, action.get("value") or "", _user(body, context), channel, thread_ts, message["ts"], context)
    reply_channel = ActionChannel(question, bot, client, body.get("trigger_id"))
    await Dialogue(ConversationCore(bot.runtime, bot.work)).on_action(event, reply_channel)


async def on_reason(ack, body, view, context, client) -> None:
    await ack()
    try:
        where = json.loads(view.get("private_metadata") or "{}")
        chosen = view["state"]["values"][blocks.REASON_BLOCK][blocks.REASON_INPUT].get("selected_option")
    except (ValueError, KeyError, TypeError):
        return
    if not chosen or not where.get("request_id") or not where.get("channel"):
        return  # the reason is optional
    bot = services(context)
    question = Question(channel=where["channel"], user=(body.get("user") or {}).get("id", ""), text="",
                        ts=where.get("ts") or "", thread_ts=where.get("thread_ts"), event_id=None,
                        workspace=multi_workspace(context))
    event = _event(Do.REASON, f"{chosen['value']}:{where['request_id']}", _user(body, context), where["channel"],
                   where.get("thread_ts"), where.get("ts") or "", context)
    await Dialogue(ConversationCore(bot.runtime, bot.work)).on_action(
        event, ActionChannel(question, bot, client, None))


# What Slack delivers here (bankbot_<do>_<n> buttons, the feedback control, the reason modal): the manifest test
# probes the registered listeners with these.
SLACK_ACTIONS = (*(blocks.action_id(do, 0) for do in Do if do not in (Do.FEEDBACK, Do.REASON)), blocks.FEEDBACK_ACTION)
SLACK_VIEWS = (blocks.REASON_VIEW,)


def register(app: AsyncApp) -> None:
    app.action(re.compile(f"^{blocks.ACTION_PREFIX}"))(on_action)
    app.view(blocks.REASON_VIEW)(on_reason)
