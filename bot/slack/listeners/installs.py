"""tokens_revoked and app_uninstalled: with installs in many workspaces, that workspace's installation is deleted
from the database (its bot token, or the revoked users' tokens); in single-workspace mode there is nothing stored,
so the event is logged: SLACK_BOT_TOKEN no longer works and needs replacing."""

from __future__ import annotations

import logging

from slack_bolt.async_app import AsyncApp

from bot.slack.context import services

log = logging.getLogger(__name__)
SLACK_EVENTS = ("tokens_revoked", "app_uninstalled")


async def on_tokens_revoked(event, context) -> None:
    store = services(context).installation_store
    tokens = event.get("tokens") or {}
    if store is None:
        log.error("Slack revoked this app's tokens (%s); set a new SLACK_BOT_TOKEN", ", ".join(tokens) or "?")
        return
    for user in tokens.get("oauth") or []:
        await store.async_delete_installation(enterprise_id=context.enterprise_id, team_id=context.team_id,
                                              user_id=user)
    if tokens.get("bot"):
        await store.async_delete_bot(enterprise_id=context.enterprise_id, team_id=context.team_id)
    log.info("tokens revoked in workspace %s:%s; its installation was deleted", context.enterprise_id or "",
             context.team_id or "")


async def on_app_uninstalled(context) -> None:
    store = services(context).installation_store
    if store is None:
        log.error("the app was uninstalled from its workspace; SLACK_BOT_TOKEN no longer works")
        return
    await store.async_delete_all(enterprise_id=context.enterprise_id, team_id=context.team_id)
    log.info("app uninstalled from workspace %s:%s; its installation was deleted", context.enterprise_id or "",
             context.team_id or "")


def register(app: AsyncApp) -> None:
    app.event("tokens_revoked")(on_tokens_revoked)
    app.event("app_uninstalled")(on_app_uninstalled)
