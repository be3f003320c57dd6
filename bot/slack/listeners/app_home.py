"""app_home_opened: the Messages tab (the agent view's conversation) gets up to four suggested prompts
(SUGGESTED_PROMPTS); the Home tab gets the admins' dashboard or, for everyone else, a short help page."""

from __future__ import annotations

import logging

from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError

from bot.slack.context import BotServices, multi_workspace, services
from bot.slack.home import admin_view, help_view

log = logging.getLogger(__name__)
SLACK_EVENTS = ("app_home_opened",)
PROMPTS_TITLE = "How can I help you today?"
REFUSED_BLOCKS = {"invalid_blocks", "invalid_blocks_format", "unsupported_block_type"}


def prompt_list(bot: BotServices) -> list[dict[str, str]]:
    return [{"title": p if len(p) <= 75 else p[:74] + "…", "message": p} for p in bot.settings.prompts]


async def on_app_home_opened(event, context, client, set_suggested_prompts=None) -> None:
    bot = services(context)
    try:
        if event.get("tab") == "messages":
            if set_suggested_prompts is not None:
                await set_suggested_prompts(prompts=prompt_list(bot), title=PROMPTS_TITLE)
            else:
                await client.assistant_threads_setSuggestedPrompts(channel_id=event["channel"],
                                                                   prompts=prompt_list(bot), title=PROMPTS_TITLE)
            return
        if event.get("tab") == "home":
            await publish(bot, client, event["user"], multi_workspace(context))
    except SlackApiError as exc:
        log.warning("app_home_opened (%s tab) failed: %s", event.get("tab"), exc.response.get("error"))


async def publish(bot: BotServices, client, user: str, workspace: str | None, notice: str | None = None) -> None:
    """The admin view for admins, the help view for others. A workspace that refuses table or chart blocks in
    views gets the code-block table (learnt once)."""
    if not await bot.admins.is_admin(user, client, workspace):
        await client.views_publish(user_id=user, view=help_view(bot.settings.prompts))
        return
    features = bot.features_of(workspace)
    view = await admin_view(bot.runtime, native=features.home_blocks, chart=features.data_visualization,
                            notice=notice)
    try:
        await client.views_publish(user_id=user, view=view)
    except SlackApiError as exc:
        if exc.response.get("error") not in REFUSED_BLOCKS or not features.home_blocks:
            raise
        log.info("the Home tab refused table/chart blocks; publishing the text table instead")
        features.home_blocks = False
        await client.views_publish(user_id=user, view=await admin_view(bot.runtime, native=False, notice=notice))


def register(app: AsyncApp) -> None:
    app.event("app_home_opened")(on_app_home_opened)
