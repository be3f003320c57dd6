"""`bankbot serve`: one aiohttp server for /health, Slack's Events API at /slack/events (or Socket Mode),
and the REST routes that attach to it."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncApp

from bot.api import attach_api
from bot.json_logging import configure_logging
from bot.runtime import Runtime
from bot.settings import Settings

log = logging.getLogger(__name__)
RUNTIME = web.AppKey("runtime", Runtime)
SLACK_APP = web.AppKey("slack_app", AsyncApp)
SLACK_EVENTS_PATH = "/slack/events"


async def health(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME]
    return web.json_response({"status": "ok", "active_model": runtime.pipeline.active_model})


def build_web_app(runtime: Runtime) -> web.Application:
    app = web.Application()
    app[RUNTIME] = runtime
    app.router.add_get("/health", health)
    attach_slack(app, runtime)
    attach_api(app, runtime)
    return app


# -- Slack ------------------------------------------------------------------------------------------------

def attach_slack(app: web.Application, runtime: Runtime) -> None:
    """Events API at /slack/events, or Socket Mode when SLACK_APP_TOKEN is set; nothing when Slack is off."""
    settings = runtime.settings
    if not settings.slack_enabled:
        log.info("Slack is off: set SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET (or SLACK_APP_TOKEN) to turn it on")
        return
    from bot.app import build_slack_app

    app[SLACK_APP] = build_slack_app(runtime)
    app.cleanup_ctx.append(_shared_http_session)
    if settings.slack_app_token:
        app.cleanup_ctx.append(_socket_mode)
    else:
        app.router.add_post(SLACK_EVENTS_PATH, slack_events)


async def slack_events(request: web.Request) -> web.Response:
    """Bolt verifies the signature, acknowledges, and runs the listener after the response is sent."""
    bolt_request = await to_bolt_request(request)
    return await to_aiohttp_response(await request.app[SLACK_APP].async_dispatch(bolt_request))


async def _shared_http_session(app: web.Application) -> AsyncIterator[None]:
    """One connection pool for every Web API call instead of a new session per call."""
    client = app[SLACK_APP].client
    async with aiohttp.ClientSession() as session:
        client.session = session
        yield
        client.session = None


async def _socket_mode(app: web.Application) -> AsyncIterator[None]:
    from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

    handler = AsyncSocketModeHandler(app[SLACK_APP], app[RUNTIME].settings.slack_app_token)
    await handler.connect_async()
    log.info("Slack Socket Mode connected")
    try:
        yield
    finally:
        await handler.close_async()


# -- serving ----------------------------------------------------------------------------------------------

async def serve(settings: Settings) -> None:
    configure_logging(settings.log_level)  # JSON lines, one per request
    runtime = await Runtime.create(settings)
    runner = web.AppRunner(build_web_app(runtime), access_log=None)  # the JSON request log replaces it
    await runner.setup()
    site = web.TCPSite(runner, "0.0.0.0", settings.port, backlog=1024)  # bursts of Slack events: no SYN drops
    await site.start()
    log.info("bankbot listening on port %d with model %s", settings.port, runtime.pipeline.active_model)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()
        await runtime.aclose()
