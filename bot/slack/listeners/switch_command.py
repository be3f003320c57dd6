"""/llm-switch <model>: admins switch the active model for every replica; with no argument, show the choices."""

from __future__ import annotations

import logging

from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError

from bot.slack_context import BotServices, services

log = logging.getLogger(__name__)

COMMAND = "/llm-switch"
REFUSAL = ("Sorry, only bankbot's admins can switch the model. If you think you should be one, "
           "ask your Slack admin. (This attempt was recorded.)")


async def on_switch(ack, command, context, client, respond) -> None:
    await ack()
    bot = services(context)
    user, target = command["user_id"], (command.get("text") or "").strip()
    pipeline = bot.runtime.pipeline
    if not await bot.admins.is_admin(user, client):
        await bot.runtime.db.record_switch(from_model=pipeline.active_model, to_model=target or "(status)",
                                           by=f"slack:{user}", ok=False, reason="not an admin")
        await respond(response_type="ephemeral", text=REFUSAL)
        await audit(bot, client, f"<@{user}> tried `{COMMAND} {target}` but is not an admin.")
        return
    if not target:
        await respond(response_type="ephemeral", text=await choices_text(bot))
        return
    if len(target.split()) > 1:
        await respond(response_type="ephemeral", text=f"Usage: `{COMMAND} <custom|qlora|gemini|version>`")
        return
    outcome = await pipeline.switch_model(target, by=f"slack:{user}")
    if outcome.ok:
        text = f"Switched from *{outcome.previous}* to *{outcome.served}* for every replica."
        await audit(bot, client, f"<@{user}> switched the model from `{outcome.previous}` to `{outcome.served}`.")
    else:
        text = f"Not switched; *{outcome.previous}* stays active. {outcome.reason}"
        await audit(bot, client, f"<@{user}> tried to switch to `{target}`: {outcome.reason}")
    await respond(response_type="ephemeral", text=text)


async def choices_text(bot: BotServices) -> str:
    pipeline = bot.runtime.pipeline
    health = await pipeline.health()
    lines = [f"Active model: *{pipeline.active_model}*", "Choices:"]
    for name, status in health.items():
        state = "healthy" if status.healthy else f"unhealthy: {status.reason}"
        lines.append(f"• `{name}` ({bot.runtime.factory.default_version(name) or name}): {state}")
    lines.append(f"Switch with `{COMMAND} <custom|qlora|gemini|version>`.")
    return "\n".join(lines)


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
