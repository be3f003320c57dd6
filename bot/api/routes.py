"""The REST endpoints: chat, benchmark summary, model switch (admin), readiness, metrics, OpenAPI."""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime, timedelta

from aiohttp import web

from bot.api.auth import require_admin, require_bearer
from bot.api.errors import ApiError, error_response, json_response
from bot.api.openapi import openapi_spec
from bot.api.public_view import public_summary
from bot.api.readiness import ReadinessProbe
from bot.api.routing_routes import RoutingRoutes
from bot.api.validation import (
    body_limit,
    check_version,
    client_id,
    parse_chat,
    read_json,
    request_id_from,
    version_pattern,
)
from bot.conversation.analytics import dialogue_analytics
from bot.prometheus import PrometheusMetrics
from bot.runtime import Runtime
from bot.warmup import WARMING_UP
from llm.errors import AllModelsFailedError, InvalidPromptError, UnknownModelError
from llm.pipeline import RequestContext

log = logging.getLogger(__name__)
RECENT_WINDOW = timedelta(hours=1)


class ApiRoutes:
    def __init__(self, runtime: Runtime, metrics: PrometheusMetrics, readiness: ReadinessProbe):
        self.runtime = runtime
        self.pipeline = runtime.pipeline
        self.metrics = metrics
        self.readiness = readiness
        self.max_prompt_chars = runtime.pipeline.options.max_prompt_chars
        self.body_limit = body_limit(self.max_prompt_chars)
        self.model_names = runtime.factory.names
        self.version_pattern = version_pattern(self.model_names)
        self._version = re.compile(self.version_pattern)
        self._openapi = json_response(openapi_spec(self.max_prompt_chars, self.version_pattern)).body

    def add_to(self, app: web.Application) -> None:
        app.router.add_post("/api/v1/chat", self.chat)
        app.router.add_get("/benchmark/summary", self.benchmark_summary)
        app.router.add_post("/model/switch/{version}", self.switch_model)
        app.router.add_get("/ready", self.ready)
        app.router.add_get("/metrics", self.prometheus)
        app.router.add_get("/openapi.json", self.openapi)
        RoutingRoutes(self.runtime).add_to(app)

    async def chat(self, request: web.Request) -> web.Response:
        context = RequestContext(source="api")
        supplied = request_id_from(request)
        try:
            chat = parse_chat(await read_json(request, self.body_limit), self.max_prompt_chars)
            if supplied or chat.user_id:  # the caller's id leads the reference; ours keeps it unique
                context = RequestContext(source="api", user_id=chat.user_id,
                                         request_id=f"{supplied}.{context.request_id}" if supplied
                                         else context.request_id)
            caller = client_id(request, self.runtime.settings.trusted_proxy_hops)
            allowance = await self.runtime.rate_limiter.check_api_client(caller)
            if not allowance.allowed:
                return error_response(429, "rate_limited", allowance.message, request_id=context.request_id,
                                      headers={"Retry-After": str(allowance.retry_after_whole_s)})
            result = await self.pipeline.generate(chat.message, context)
        except ApiError as exc:
            return exc.response(supplied)
        except InvalidPromptError as exc:
            return error_response(422, "invalid_request", str(exc), request_id=context.request_id)
        except AllModelsFailedError:
            if self.runtime.warming_up():  # the models are still loading (or the custom one training)
                return error_response(503, "warming_up", WARMING_UP, request_id=context.request_id,
                                      headers={"Retry-After": "60"})
            return error_response(503, "all_models_failed", "no model could answer right now; quote reference "
                                  f"{context.request_id} when you report it", request_id=context.request_id)
        return json_response({
            "text": result.text, "intent": result.intent, "latency_ms": result.latency_ms, "tokens": result.tokens,
            "prompt_tokens": result.prompt_tokens, "completion_tokens": result.completion_tokens,
            "confidence": result.confidence, "model": result.model, "model_version": result.model_version,
            "device": result.device, "fallback_from": result.fallback_from, "cost_usd": result.cost_usd,
            "request_id": context.request_id,
        }, headers={"X-Request-ID": context.request_id})

    async def benchmark_summary(self, request: web.Request) -> web.Response:
        """Everything for the admin token; without any token, the figures only (see bot/api/public_view.py)."""
        admin = "Authorization" in request.headers
        if admin:
            try:
                require_admin(request, self.runtime.settings.admin_api_token)
            except ApiError as exc:
                return exc.response()
        db = self.runtime.db
        try:
            runs = await db.latest_benchmark_runs(1)
            recent = await db.request_metrics(since=datetime.now(UTC) - RECENT_WINDOW)
            dialogue = await dialogue_analytics(db) if admin else None  # per model: intents' names, admin only
        except Exception as exc:  # noqa: BLE001 - an outage is a 503 with its reason, not a 500
            log.warning("benchmark summary: database error: %s", exc)
            return error_response(503, "database_unavailable", "the database is unreachable; retry later")
        latest = runs[0] if runs else None
        summary = {
            "active_model": self.pipeline.active_model,
            "latest_run": latest,
            "recommendation": latest["recommendation"] if latest else None,
            "live": self.pipeline.metrics(),
            "recent": recent,
        } | ({"dialogue": dialogue} if admin else {})
        return json_response(summary if admin else public_summary(summary))

    async def switch_model(self, request: web.Request) -> web.Response:
        try:
            require_admin(request, self.runtime.settings.admin_api_token)
            version = check_version(request.match_info["version"], self._version, self.model_names)
            try:
                await self.runtime.factory.check_version(version)
            except UnknownModelError as exc:  # a version its adapter cannot serve: refused, with the ones it can
                raise ApiError(404, "unknown_model", str(exc)) from None
            percent = _percent(request.query.get("percent"))
            if percent is not None and percent < 100:  # a canary: that share of users, sticky per user
                outcome = await self.pipeline.switcher.canary(version, percent, by="api")
                if not outcome.ok:
                    return error_response(409, "model_unhealthy", outcome.reason)
                return json_response({"ok": True, "active_model": self.pipeline.active_model,
                                      "canary": {"model": version, "percent": percent}})
            outcome = await self.pipeline.switcher.canary(version, 100, by="api")  # also ends a canary
        except ApiError as exc:
            return exc.response()
        if not outcome.ok:
            return error_response(409, "model_unhealthy", outcome.reason)
        log.info("model switched from %s to %s through the API", outcome.previous, outcome.served)
        serving = self.runtime.factory.loaded().get(outcome.target)  # loaded by the switch's health check
        return json_response({"ok": True, "previous": outcome.previous, "active_model": outcome.target,
                              "version": serving.version if serving else outcome.served})

    async def ready(self, request: web.Request) -> web.Response:
        readiness = await self.readiness.check()
        return json_response(readiness.to_dict(), status=200 if readiness.ready else 503)

    async def prometheus(self, request: web.Request) -> web.Response:
        from prometheus_client import CONTENT_TYPE_LATEST

        try:
            require_bearer(request, self.runtime.settings.metrics_token, "METRICS_TOKEN")
        except ApiError as exc:
            return exc.response()
        return web.Response(body=await self.metrics.render(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def openapi(self, request: web.Request) -> web.Response:
        return web.Response(body=self._openapi, content_type="application/json")


def _percent(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        percent = float(value)
    except ValueError:
        percent = -1.0
    if not 0 < percent <= 100:
        raise ApiError(400, "invalid_percent", "percent is a share of users above 0 and at most 100")
    return percent
