"""`bankbot serve`: one aiohttp server for /health, Slack's Events API at /slack/events (or Socket Mode),
and the REST routes that attach to it.

SIGTERM or SIGINT shuts down gracefully, within SHUTDOWN_GRACE_S + FLUSH_GRACE_S (under 10 s): aiohttp's
`AppRunner.cleanup()` closes the listening socket (new connections are refused), closes idle keep-alive
connections, and waits up to `shutdown_timeout` for the requests being handled; then the app's cleanup
contexts run in reverse order, the first of which waits for the Slack listeners still answering after
their ack (bot/inflight.py) before the shared Web API session closes. Last, the request log is flushed.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncApp

from bot.api import API_ROUTES, attach_api
from bot.inflight import SlackWork
from bot.json_logging import configure_logging
from bot.runtime import Runtime
from bot.settings import Settings
from llm.factory import AdapterBuilder

log = logging.getLogger(__name__)
RUNTIME = web.AppKey("runtime", Runtime)
SLACK_APP = web.AppKey("slack_app", AsyncApp)
SLACK_WORK = web.AppKey("slack_work", SlackWork)
SHUTDOWN_DEADLINE = web.AppKey("shutdown_deadline", list)  # [loop time] once a shutdown has begun
SLACK_EVENTS_PATH = "/slack/events"
SHUTDOWN_GRACE_S = 7.0  # requests and Slack answers in flight at SIGTERM get this long, together
FLUSH_GRACE_S = 2.0  # then the request log gets this long to write what it holds


async def health(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME]
    return web.json_response({"status": "ok", "active_model": runtime.pipeline.active_model})


def build_web_app(runtime: Runtime) -> web.Application:
    app = web.Application()
    app[RUNTIME] = runtime
    app[SHUTDOWN_DEADLINE] = []
    app.router.add_get("/health", health)
    attach_slack(app, runtime)
    attach_api(app, runtime)
    if SLACK_WORK in app:
        app[API_ROUTES].metrics.registry.register(app[SLACK_WORK])
    return app


# -- Slack ------------------------------------------------------------------------------------------------

def attach_slack(app: web.Application, runtime: Runtime) -> None:
    """Events API at /slack/events, or Socket Mode when SLACK_APP_TOKEN is set; nothing when Slack is off."""
    settings = runtime.settings
    if not settings.slack_enabled:
        log.info("Slack is off: set SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET (or SLACK_APP_TOKEN) to turn it on")
        return
    from bot.app import build_slack_app

    app[SLACK_WORK] = SlackWork()
    app[SLACK_APP] = build_slack_app(runtime, work=app[SLACK_WORK])
    app.cleanup_ctx.append(_shared_http_session)  # cleanup contexts exit in reverse order:
    app.cleanup_ctx.append(_finish_slack_work)  # the answers finish before the session closes
    if settings.slack_app_token:
        app.cleanup_ctx.append(_socket_mode)  # and no new envelope arrives while they finish
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


async def _finish_slack_work(app: web.Application) -> AsyncIterator[None]:
    """At cleanup (every HTTP request is done by then), wait for the listeners still running after their ack,
    until the shutdown deadline (SHUTDOWN_GRACE_S from the start of the cleanup when none was set)."""
    yield
    loop = asyncio.get_running_loop()
    deadline = app[SHUTDOWN_DEADLINE][0] if app[SHUTDOWN_DEADLINE] else loop.time() + SHUTDOWN_GRACE_S
    await app[SLACK_WORK].drain(deadline)


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

async def serve(settings: Settings, *, builders: dict[str, AdapterBuilder | str] | None = None) -> None:
    """Serve until SIGTERM or SIGINT, then shut down gracefully (see the module's docstring).

    `builders` replaces model adapters (tests/serve_scripted.py serves scripted models this way)."""
    configure_logging(settings.log_level)  # JSON lines, one per request
    runtime = await Runtime.create(settings, builders=builders)
    app = build_web_app(runtime)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=SHUTDOWN_GRACE_S)  # the JSON log replaces it
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
        log.info("shutting down: no new connections; finishing the requests and Slack answers in flight")
    finally:
        app[SHUTDOWN_DEADLINE].append(loop.time() + SHUTDOWN_GRACE_S)
        try:
            await runner.cleanup()
        finally:
            await _close_runtime(runtime)


async def _close_runtime(runtime: Runtime) -> None:
    """Stop the pipeline and flush the request log, within FLUSH_GRACE_S (a database that is still down
    cannot hold the exit up); the rows not written are counted in the log."""
    request_log = runtime.db.request_log
    try:
        async with asyncio.timeout(FLUSH_GRACE_S):
            await runtime.aclose()
    except TimeoutError:
        log.error("shutdown: the request log could not be flushed within %.1f s; %d rows lost (%s)",
                  FLUSH_GRACE_S, request_log.pending, request_log.last_error)
    else:
        log.info("shutdown complete: %d request rows written, %d unwritten, %d dropped", request_log.written,
                 request_log.pending, request_log.dropped)
