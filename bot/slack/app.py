"""The Slack app: a slack-bolt AsyncApp with bankbot's runtime injected and one listener per file."""

from __future__ import annotations

import logging

from slack_bolt.async_app import AsyncApp
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient

from bot.inflight import TrackingRegistrar, Work
from bot.runtime import Runtime
from bot.settings import Settings
from bot.slack.context import SERVICES_KEY, BotServices
from bot.slack.listeners import (
    app_context,
    app_home,
    assistant_threads,
    bench_command,
    dialogue_actions,
    direct_messages,
    home_actions,
    installs,
    mentions,
    other_messages,
    switch_command,
    thread_followups,
)

log = logging.getLogger(__name__)

# Order matters: bolt runs the first listener that matches, so the catch-all for messages goes last.
LISTENERS = (mentions, direct_messages, thread_followups, other_messages, switch_command, bench_command,
             dialogue_actions, app_home, app_context, assistant_threads, home_actions, installs)


def build_web_client(settings: Settings) -> AsyncWebClient:
    """The Web API client; SLACK_API_URL points it at a proxy or a fake server."""
    kwargs = {"base_url": settings.slack_api_url.rstrip("/") + "/"} if settings.slack_api_url else {}
    client = AsyncWebClient(token=settings.slack_bot_token, **kwargs)  # no token with OAuth: bolt sets each team's
    client.retry_handlers.append(AsyncRateLimitErrorRetryHandler(max_retry_count=2))  # honour Retry-After on 429
    return client


def build_slack_app(runtime: Runtime, *, socket_mode: bool | None = None,
                    work: Work | None = None) -> AsyncApp:
    """An AsyncApp answering through `runtime.pipeline`. Events are acknowledged before any model runs.

    With SLACK_BOT_TOKEN it serves that one workspace; with SLACK_CLIENT_ID and SLACK_CLIENT_SECRET instead, every
    workspace that installs it through /slack/install (bot/slack/oauth.py), each event answered with its
    workspace's own token. Every listener runs tracked by `work` (a new Work when not given), so a shutdown can
    wait for them.
    """
    settings = runtime.settings
    if not (settings.slack_bot_token or settings.slack_oauth):
        raise ValueError("SLACK_BOT_TOKEN is not set (or set SLACK_CLIENT_ID and SLACK_CLIENT_SECRET to install "
                         "in many workspaces)")
    socket_mode = bool(settings.slack_app_token) if socket_mode is None else socket_mode
    if not socket_mode and not settings.slack_signing_secret:
        raise ValueError("SLACK_SIGNING_SECRET is not set (or set SLACK_APP_TOKEN for Socket Mode)")
    client = build_web_client(settings)
    oauth = None
    if settings.slack_oauth:
        from bot.slack.oauth import oauth_settings

        oauth = oauth_settings(settings, runtime.db.engine, client)
    app = AsyncApp(
        client=client,
        oauth_settings=oauth,
        signing_secret=settings.slack_signing_secret or "",
        request_verification_enabled=not socket_mode,  # Socket Mode requests come over an authenticated socket
        process_before_response=False,  # ack first; listeners run afterwards
        logger=logging.getLogger("bot.slack"),
    )
    services = BotServices.create(runtime, work or Work())
    services.installation_store = oauth.installation_store if oauth else None

    @app.middleware
    async def inject_services(context, next):
        context[SERVICES_KEY] = services
        await next()

    for listener in LISTENERS:
        listener.register(TrackingRegistrar(app, services.work))
    return app
