"""`bankbot serve`: one aiohttp server for /health, Slack's Events API at /slack/events (or Socket Mode),
Teams at /api/messages (bot/teams/), and the REST routes that attach to it.

Start-up binds the port first: /health answers at once. Then the database is migrated and the active model
read (until then, /ready is 503 and other routes wait up to STARTUP_WAIT_S, then get a 503); then every
configured model warms up in the background (bot/warmup.py), the custom one trained first in a child process
when it has no checkpoint, and every model's health is checked in the background (bot/health_watch.py).

SIGTERM or SIGINT shuts down gracefully, within SHUTDOWN_GRACE_S + FLUSH_GRACE_S (under 10 s) plus the time the
models take to close: aiohttp's `AppRunner.cleanup()` closes the listening socket (new connections are
refused), closes idle keep-alive connections, and waits up to `shutdown_timeout` for the requests being
handled; then the app's cleanup contexts run in reverse order, the first of which wait for the Teams answers
and the Slack listeners still running after their ack (bot/inflight.py) before the shared Web API session closes. Then a
training still running is stopped, the request log is flushed (within FLUSH_GRACE_S, in a `finally`), and only
then are the models closed (a vLLM engine can take long to stop).
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncApp

from bot.api import API_ROUTES, attach_api
from bot.api.errors import error_response
from bot.health_watch import HealthWatch
from bot.inflight import Work
from bot.json_logging import configure_logging
from bot.runtime import Runtime
from bot.settings import Settings
from bot.sweeper import sweeper_context
from bot.training import CustomTraining, custom_training_needed
from bot.warmup import WARMING_UP, Warmup
from llm.factory import AdapterBuilder

log = logging.getLogger(__name__)
RUNTIME = web.AppKey("runtime", Runtime)
SLACK_APP = web.AppKey("slack_app", AsyncApp)
SLACK_WORK = web.AppKey("slack_work", Work)
TEAMS_WORK = web.AppKey("teams_work", Work)
TEAMS_FRONT_END = web.AppKey("teams_front_end", object)
SWEPT = web.AppKey("swept", asyncio.Event)  # set once the start-up sweep has run: questions wait for it
TEAMS_ANONYMOUS = "anonymous: /api/messages accepts requests without a token (Agents Playground only)"
SHUTDOWN_DEADLINE = web.AppKey("shutdown_deadline", list)  # [loop time] once a shutdown has begun
SLACK_EVENTS_PATH = "/slack/events"
SHUTDOWN_GRACE_S = 7.0  # requests and Slack answers in flight at SIGTERM get this long, together
FLUSH_GRACE_S = 2.0  # then the request log gets this long to write what it holds
STARTUP_WAIT_S = 2.0  # a request arriving while the database is migrated waits this long, then gets a 503
OPEN_WHILE_STARTING = frozenset({"/health", "/ready", "/metrics", "/openapi.json"})


async def health(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME]
    return web.json_response({"status": "ok", "active_model": runtime.pipeline.active_model})


@web.middleware
async def wait_until_started(request: web.Request, handler):
    """Before `Runtime.start()` has finished (the salt of user hashes and the active model are not known yet),
    a question waits up to STARTUP_WAIT_S, then gets a 503 (Slack retries it later)."""
    started, swept = request.app[RUNTIME].started, request.app[SWEPT]
    if not (started.is_set() and swept.is_set()) and request.path not in OPEN_WHILE_STARTING:
        try:
            async with asyncio.timeout(STARTUP_WAIT_S):
                await started.wait()
                await swept.wait()  # the questions a dead replica left are taken over before new ones
        except TimeoutError:
            return error_response(503, "warming_up", WARMING_UP, headers={"Retry-After": "10"})
    return await handler(request)


def build_web_app(runtime: Runtime) -> web.Application:
    app = web.Application(middlewares=[wait_until_started])
    app[RUNTIME] = runtime
    app[SHUTDOWN_DEADLINE] = []
    app[SWEPT] = asyncio.Event()
    app.router.add_get("/health", health)
    app.cleanup_ctx.append(sweeper_context(runtime, lambda: resumers(app), app[SWEPT],  # first in: its clean-up,
                                           lambda: bool(app[SHUTDOWN_DEADLINE])))  # releasing leases, runs last
    attach_slack(app, runtime)
    attach_teams(app, runtime)
    attach_api(app, runtime)
    for work in (SLACK_WORK, TEAMS_WORK):
        if work in app:
            app[API_ROUTES].metrics.registry.register(app[work])
    return app


def resumers(app: web.Application) -> dict:
    """Each attached front end's way to answer a question taken over from a dead replica (bot/sweeper.py)."""
    found = {}
    if SLACK_APP in app:
        from bot.slack.context import BotServices
        from bot.slack.reply import resume_question

        services, slack = BotServices.create(app[RUNTIME], app[SLACK_WORK]), app[SLACK_APP]
        services.installation_store = slack.installation_store
        found["slack"] = (lambda claim: resume_question(claim, services, slack), app[SLACK_WORK])
    if TEAMS_FRONT_END in app:
        from bot.teams.channel import resume_question as resume_teams

        front_end = app[TEAMS_FRONT_END]
        found["teams"] = (lambda claim: resume_teams(claim, front_end), app[TEAMS_WORK])
    return found


# -- Slack ------------------------------------------------------------------------------------------------

def attach_slack(app: web.Application, runtime: Runtime) -> None:
    """Events API at /slack/events, or Socket Mode when SLACK_APP_TOKEN is set; nothing when Slack is off."""
    settings = runtime.settings
    if not settings.slack_enabled:
        log.info("Slack is off: set SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET (or SLACK_APP_TOKEN) to turn it on")
        return
    from bot.slack.app import build_slack_app

    app[SLACK_WORK] = Work("slack", "listeners")
    app[SLACK_APP] = build_slack_app(runtime, work=app[SLACK_WORK])
    app.cleanup_ctx.append(_shared_http_session)  # cleanup contexts exit in reverse order:
    app.cleanup_ctx.append(_finish_work(SLACK_WORK))  # the answers finish before the session closes
    if settings.slack_app_token:
        app.cleanup_ctx.append(_socket_mode)  # and no new envelope arrives while they finish
    else:
        app.router.add_post(SLACK_EVENTS_PATH, slack_events)
    if settings.slack_oauth:  # installs in many workspaces: the OAuth flow's two pages
        from bot.slack.oauth import INSTALL_PATH, REDIRECT_PATH

        app.router.add_get(INSTALL_PATH, slack_install)
        app.router.add_get(REDIRECT_PATH, slack_oauth_redirect)


async def slack_events(request: web.Request) -> web.Response:
    """Bolt verifies the signature, acknowledges, and runs the listener after the response is sent."""
    bolt_request = await to_bolt_request(request)
    return await to_aiohttp_response(await request.app[SLACK_APP].async_dispatch(bolt_request))


async def slack_install(request: web.Request) -> web.Response:
    """The "Add to Slack" page: a fresh OAuth state (stored in the database), then Slack's authorize URL."""
    flow = request.app[SLACK_APP].oauth_flow
    return await to_aiohttp_response(await flow.handle_installation(await to_bolt_request(request)))


async def slack_oauth_redirect(request: web.Request) -> web.Response:
    """Slack's redirect after the install: the state is checked, the code exchanged (oauth.v2.access) and the
    workspace's installation stored."""
    flow = request.app[SLACK_APP].oauth_flow
    return await to_aiohttp_response(await flow.handle_callback(await to_bolt_request(request)))


async def _shared_http_session(app: web.Application) -> AsyncIterator[None]:
    """One connection pool for every Web API call instead of a new session per call."""
    client = app[SLACK_APP].client
    async with aiohttp.ClientSession() as session:
        client.session = session
        yield
        client.session = None


def _finish_work(key: web.AppKey):
    """A cleanup context: at cleanup (every HTTP request is done by then), wait for the front end's answers still
    running after their ack, until the shutdown deadline (SHUTDOWN_GRACE_S from the start of the cleanup when
    none was set)."""
    async def finish(app: web.Application) -> AsyncIterator[None]:
        yield
        loop = asyncio.get_running_loop()
        deadline = app[SHUTDOWN_DEADLINE][0] if app[SHUTDOWN_DEADLINE] else loop.time() + SHUTDOWN_GRACE_S
        await app[key].drain(deadline)

    return finish


async def _socket_mode(app: web.Application) -> AsyncIterator[None]:
    """Connects in the background once the runtime has started (the port opens first)."""
    from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

    handler = AsyncSocketModeHandler(app[SLACK_APP], app[RUNTIME].settings.slack_app_token)

    async def connect() -> None:
        await app[RUNTIME].started.wait()
        await handler.connect_async()
        log.info("Slack Socket Mode connected")

    connecting = asyncio.create_task(connect(), name="slack-socket-mode")
    try:
        yield
    finally:
        connecting.cancel()
        await asyncio.gather(connecting, return_exceptions=True)
        await handler.close_async()


# -- Teams ------------------------------------------------------------------------------------------------

def attach_teams(app: web.Application, runtime: Runtime) -> None:
    """POST /api/messages when the Agents SDK's connection variables are set (or anonymous mode is on)."""
    from bot.teams.config import sdk_environment, teams_configured

    env = sdk_environment()
    if not teams_configured(env):
        log.info("Teams is off: set CONNECTIONS__SERVICE_CONNECTION__SETTINGS__CLIENTID (and its secret, tenant and "
                 "auth type) to turn it on")
        return
    from bot.teams.app import TeamsFrontEnd

    app[TEAMS_WORK] = Work("teams", "answers")
    front_end = TeamsFrontEnd(runtime, app[TEAMS_WORK], env)
    front_end.attach(app)
    app[TEAMS_FRONT_END] = front_end
    app.cleanup_ctx.append(_finish_work(TEAMS_WORK))
    if front_end.anonymous:
        app.middlewares.append(_ready_says_anonymous)


@web.middleware
async def _ready_says_anonymous(request: web.Request, handler):
    """Anonymous mode is never silent: /ready says so (beside the warning logged at start-up)."""
    response = await handler(request)
    if request.path != "/ready" or not isinstance(response, web.Response) or response.content_type != \
            "application/json":
        return response
    data = json.loads(response.body) | {"teams": TEAMS_ANONYMOUS}
    return web.json_response(data, status=response.status, headers={k: v for k, v in response.headers.items()
                                                                    if k.lower() not in ("content-type",
                                                                                         "content-length")})


async def _health_watch(app: web.Application) -> AsyncIterator[None]:
    """Every configured model's health, checked in the background (bot/health_watch.py)."""
    watch = asyncio.create_task(HealthWatch(app[API_ROUTES].readiness).run(), name="health-watch")
    try:
        yield
    finally:
        watch.cancel()
        await asyncio.gather(watch, return_exceptions=True)


# -- serving ----------------------------------------------------------------------------------------------

async def serve(settings: Settings, *, builders: dict[str, AdapterBuilder | str] | None = None,
                train: bool = True) -> None:
    """Serve until SIGTERM or SIGINT, then shut down gracefully (see the module's docstring).

    `builders` replaces model adapters (tests/serve_scripted.py serves scripted models this way; nothing is
    trained then). `train=False` (`--no-train`): a missing custom checkpoint is not trained."""
    configure_logging(settings.log_level)  # JSON lines, one per request
    runtime = Runtime.build(settings, builders=builders)
    app = build_web_app(runtime)
    app.cleanup_ctx.append(_health_watch)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=SHUTDOWN_GRACE_S)  # the JSON log replaces it
    await runner.setup()
    site = web.TCPSite(runner, "0.0.0.0", settings.port, backlog=1024)  # bursts of Slack events: no SYN drops
    await site.start()
    log.info("bankbot listening on port %d; starting", settings.port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await runtime.start()
        training = None
        if train and builders is None and await asyncio.to_thread(custom_training_needed, settings):
            training = CustomTraining(settings)
        runtime.warmup = Warmup(runtime, training=training)
        runtime.warmup.start()
        log.info("bankbot serving with model %s; models warming up", runtime.pipeline.active_model)
        await stop.wait()
        log.info("shutting down: no new connections; finishing the requests and Slack answers in flight")
    finally:
        app[SHUTDOWN_DEADLINE].append(loop.time() + SHUTDOWN_GRACE_S)
        try:
            await runner.cleanup()
        finally:
            await runtime.aclose(flush_budget_s=FLUSH_GRACE_S)
            log.info("shutdown complete")
