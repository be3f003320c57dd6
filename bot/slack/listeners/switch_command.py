"""/llm-switch <model> [P%] | canary off | shadow <model> [P%] | shadow off: admins switch the active model, roll one
out to a share of users or shadow one, for every replica; with no argument, show the choices and the policy."""

from __future__ import annotations

import logging

from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError

from bot.conversation import switching
from bot.slack.context import BotServices, multi_workspace, services

log = logging.getLogger(__name__)

COMMAND = "/llm-switch"
REFUSAL = ("Sorry, only bankbot's admins can switch the model. If you think you should be one, "
           "ask your Slack admin. (This attempt was recorded.)")


def bold(text: str) -> str:
    return f"*{text}*"


def code(text: str) -> str:
    return f"`{text}`"


async def on_switch(ack, command, context, client, respond) -> None:
    await ack()
    bot = services(context)
    user, target = command["user_id"], (command.get("text") or "").strip()
    if not await bot.admins.is_admin(user, client, multi_workspace(context)):
        await switching.record_refusal(bot.runtime, f"slack:{user}", target)
        await respond(response_type="ephemeral", text=REFUSAL)
        await audit(bot, client, switching.refusal_audit(f"<@{user}>", COMMAND, target))
        return
    outcome = await switching.run(bot.runtime, target, f"slack:{user}", f"<@{user}>", bold)
    if outcome is None:  # no argument: the choices and the whole routing policy
        await respond(response_type="ephemeral", text=await choices_text(bot))
        return
    if outcome.audit:
        await audit(bot, client, outcome.audit)
    await respond(response_type="ephemeral", text=outcome.text)


async def choices_text(bot: BotServices) -> str:
    return await switching.choices_text(bot.runtime, bold, code, COMMAND)


async def audit(bot: BotServices, client, line: str) -> None:
    channel = bot.settings.admin_channel
    if not channel:
        return
    try:
        await client.chat_postMessage(channel=channel, text=f":memo: {line}")
    except SlackApiError as exc:
        log.warning("could not post the audit line to %s: %s", channel, exc.response.get("error"))


def register(app: AsyncApp) -> None:
    app.command(COMMAND)(on_switch)
