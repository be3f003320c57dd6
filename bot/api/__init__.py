"""The REST API on `bankbot serve`'s aiohttp app: `attach_api(app, runtime)` adds its routes, the Prometheus
metrics of the runtime and the one-JSON-line-per-request log."""

from __future__ import annotations

from aiohttp import web

from bot.api.readiness import ReadinessProbe
from bot.api.routes import ApiRoutes
from bot.json_logging import log_request
from bot.prometheus import PrometheusMetrics
from bot.runtime import Runtime

API_ROUTES = web.AppKey("api_routes", ApiRoutes)


def attach_api(app: web.Application, runtime: Runtime) -> None:
    """Add /api/v1/chat, /benchmark/summary, /model/switch/{version}, /ready, /metrics and /openapi.json.

    Call once per app, before it starts. The request listeners are removed when the app is cleaned up.
    """
    readiness = ReadinessProbe(runtime)
    metrics = PrometheusMetrics(runtime, health=readiness)
    routes = ApiRoutes(runtime, metrics, readiness)
    routes.add_to(app)
    app[API_ROUTES] = routes
    listeners = runtime.pipeline.request_listeners
    listeners.extend((metrics.observe, log_request))

    async def detach(_app: web.Application) -> None:
        for listener in (metrics.observe, log_request):
            if listener in listeners:
                listeners.remove(listener)

    app.on_cleanup.append(detach)


__all__ = ["attach_api", "API_ROUTES"]
