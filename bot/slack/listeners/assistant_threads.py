"""assistant_thread_started: apps still on the legacy assistant view (separate Chat and History tabs) get the
same suggested prompts when a thread starts. Apps on the agent view get them from app_home_opened instead."""

from __future__ import annotations

import logging

from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError

from bot.slack.context import services
from bot.slack.listeners.app_home import PROMPTS_TITLE, prompt_list

log = logging.getLogger(__name__)
SLACK_EVENTS = ("assistant_thread_started",)


async def on_thread_started(context, set_suggested_prompts=None) -> None:
    if set_suggested_prompts is None:  # bolt attaches it for assistant_thread_started events
        return
    try:
        await set_suggested_prompts(prompts=prompt_list(services(context)), title=PROMPTS_TITLE)
    except SlackApiError as exc:
        log.warning("could not set the suggested prompts: %s", exc.response.get("error"))


def register(app: AsyncApp) -> None:
    app.event("assistant_thread_started")(on_thread_started)
