"""REST endpoints of the routing policy (admin token): GET /routing, PUT /routing, GET /routing/compare.
A canary through the switch endpoint (POST /model/switch/{version}?percent=P) is in routes.py."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from aiohttp import web

from bot.api.auth import require_admin
from bot.api.errors import ApiError, error_response, json_response
from bot.api.validation import read_json
from bot.routing_commands import parse_since
from llm.routing.compare import compare
from llm.routing.policy import RoutingPolicy

if TYPE_CHECKING:
    from bot.runtime import Runtime

POLICY_BODY_LIMIT = 16 * 1024


class RoutingRoutes:
    def __init__(self, runtime: Runtime):
        self.runtime = runtime
        self.pipeline = runtime.pipeline

    def add_to(self, app: web.Application) -> None:
        app.router.add_get("/routing", self.show)
        app.router.add_put("/routing", self.replace)
        app.router.add_get("/routing/compare", self.compare)

    def view(self) -> dict[str, Any]:
        return {"active_model": self.pipeline.active_model, "policy": json.loads(self.pipeline.policy.to_json()),
                "budgets": self.pipeline.budgets.snapshot()}

    async def show(self, request: web.Request) -> web.Response:
        try:
            require_admin(request, self.runtime.settings.admin_api_token)
        except ApiError as exc:
            return exc.response()
        return json_response(self.view())

    async def replace(self, request: web.Request) -> web.Response:
        """The whole policy (canary, shadow, escalation; absent parts are off), checked, stored, audited."""
        try:
            require_admin(request, self.runtime.settings.admin_api_token)
            body = await read_json(request, POLICY_BODY_LIMIT)
            try:
                policy = RoutingPolicy.from_json(json.dumps(body))
            except ValueError as exc:
                raise ApiError(400, "invalid_policy", str(exc)) from None
        except ApiError as exc:
            return exc.response()
        outcome = await self.pipeline.switcher.set_policy(policy, by="api", what="policy (PUT /routing)")
        if not outcome.ok:
            return error_response(409, "policy_refused", outcome.reason)
        return json_response(self.view())

    async def compare(self, request: web.Request) -> web.Response:
        try:
            require_admin(request, self.runtime.settings.admin_api_token)
            try:
                window = parse_since(request.query.get("since", "24h"))
            except ValueError as exc:
                raise ApiError(400, "invalid_since", str(exc)) from None
        except ApiError as exc:
            return exc.response()
        figures = compare(await self.runtime.db.routing_metrics(datetime.now(UTC) - window))
        return json_response(figures | {"since": request.query.get("since", "24h")})
