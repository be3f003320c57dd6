"""`bankbot serve`: one aiohttp server for /health (and the Slack and REST routes that attach to it)."""

from __future__ import annotations

import asyncio
import logging
import signal

from aiohttp import web

from bot.runtime import Runtime
from bot.settings import Settings

log = logging.getLogger(__name__)
RUNTIME = web.AppKey("runtime", Runtime)


async def health(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME]
    return web.json_response({"status": "ok", "active_model": runtime.pipeline.active_model})


def build_web_app(runtime: Runtime) -> web.Application:
    app = web.Application()
    app[RUNTIME] = runtime
    app.router.add_get("/health", health)
    if not runtime.settings.slack_enabled:
        log.info("Slack is off: set SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET (or SLACK_APP_TOKEN) to turn it on")
    return app


async def serve(settings: Settings) -> None:
    runtime = await Runtime.create(settings)
    runner = web.AppRunner(build_web_app(runtime))
    await runner.setup()
    site = web.TCPSite(runner, "0.0.0.0", settings.port)
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
