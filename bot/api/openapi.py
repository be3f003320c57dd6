"""The OpenAPI 3.0 description of every endpoint, served at GET /openapi.json."""

from __future__ import annotations

from typing import Any

from bot.api.validation import MAX_USER_ID_CHARS

NUMBER_OR_NULL = {"type": "number", "nullable": True}
STRING_OR_NULL = {"type": "string", "nullable": True}


def _error(description: str) -> dict[str, Any]:
    schema = {"$ref": "#/components/schemas/Error"}
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _ok(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def openapi_spec(max_prompt_chars: int, version_pattern: str) -> dict[str, Any]:
    ref = "#/components/schemas/"
    return {
        "openapi": "3.0.3",
        "info": {"title": "bankbot", "version": "1.0.0",
                 "description": "Banking77 assistant over swappable models: chat, benchmarks, model switching."},
        "paths": {
            "/api/v1/chat": {"post": {
                "summary": "Answer one customer message through the active model and its fallbacks",
                "operationId": "chat",
                "parameters": [{"name": "X-Request-ID", "in": "header", "required": False,
                                "description": "leads the reference id when it matches [A-Za-z0-9._-]{1,64}",
                                "schema": {"type": "string"}}],
                "requestBody": {"required": True, "content": {"application/json": {
                    "schema": {"$ref": ref + "ChatRequest"}}}},
                "responses": {
                    "200": _ok("The answer", {"$ref": ref + "ChatResponse"}),
                    "400": _error("Malformed JSON"),
                    "413": _error("The body is too large"),
                    "415": _error("The body is not application/json"),
                    "422": _error("A missing, empty, oversized or mistyped field, or an unknown field"),
                    "429": _error("RATE_LIMIT_API_PER_MIN exceeded for this client; see Retry-After"),
                    "503": _error("Every model failed; the body carries the reference id"),
                },
            }},
            "/benchmark/summary": {"get": {
                "summary": "The latest benchmark run, live per-model metrics and the recommendation; without "
                           "the admin token, figures only (no failure reasons, hosts, URLs or costs)",
                "operationId": "benchmarkSummary",
                "security": [{}, {"adminToken": []}],
                "responses": {"200": _ok("The summary", {"$ref": ref + "BenchmarkSummary"}),
                              "401": _error("An Authorization header without the admin token"),
                              "403": _error("An Authorization header while ADMIN_API_TOKEN is unset"),
                              "503": _error("The database is unreachable")},
            }},
            "/model/switch/{version}": {"post": {
                "summary": "Make a model active for every replica, after a health check (admin)",
                "operationId": "switchModel",
                "security": [{"adminToken": []}],
                "parameters": [{"name": "version", "in": "path", "required": True,
                                "description": "a model name or a version string (custom_model_built_0.0.0)",
                                "schema": {"type": "string", "pattern": version_pattern}},
                               {"name": "percent", "in": "query", "required": False,
                                "description": "a canary: this share of users (sticky per user); 100 promotes",
                                "schema": {"type": "number", "exclusiveMinimum": True, "minimum": 0,
                                           "maximum": 100}}],
                "responses": {
                    "200": _ok("Switched, or a canary started",
                               {"oneOf": [{"$ref": ref + "SwitchResult"}, {"$ref": ref + "CanaryResult"}]}),
                    "400": _error("percent is not a share above 0 and at most 100"),
                    "401": _error("Missing or wrong bearer token"),
                    "403": _error("Admin endpoints are disabled: ADMIN_API_TOKEN is unset"),
                    "404": _error("Unknown model or version (refused without an audit entry)"),
                    "409": _error("The model is unhealthy; the active model is unchanged"),
                },
            }},
            "/routing": {
                "get": {
                    "summary": "The routing policy: active model, canary, shadow, escalation, budgets (admin)",
                    "operationId": "getRouting", "security": [{"adminToken": []}],
                    "responses": {"200": _ok("The policy", {"$ref": ref + "Routing"}),
                                  "401": _error("Missing or wrong bearer token"),
                                  "403": _error("Admin endpoints are disabled: ADMIN_API_TOKEN is unset")}},
                "put": {
                    "summary": "Replace the routing policy for every replica; absent parts are off (admin, audited)",
                    "operationId": "putRouting", "security": [{"adminToken": []}],
                    "requestBody": {"required": True, "content": {"application/json": {
                        "schema": {"$ref": ref + "RoutingPolicy"}}}},
                    "responses": {"200": _ok("Stored", {"$ref": ref + "Routing"}),
                                  "400": _error("Not a valid policy or not JSON"),
                                  "401": _error("Missing or wrong bearer token"),
                                  "403": _error("Admin endpoints are disabled: ADMIN_API_TOKEN is unset"),
                                  "409": _error("Refused: an unknown or unhealthy model; the policy is unchanged"),
                                  "413": _error("Body too large"),
                                  "415": _error("Not application/json")}}},
            "/routing/compare": {"get": {
                "summary": "Each routing arm with 95% intervals and plain sentences on significance (admin)",
                "operationId": "compareRouting", "security": [{"adminToken": []}],
                "parameters": [{"name": "since", "in": "query", "required": False,
                                "description": "the window: 30m, 24h (default), 7d",
                                "schema": {"type": "string", "pattern": "^[0-9]+[mhd]$"}}],
                "responses": {"200": _ok("The arms", {"$ref": ref + "Compare"}),
                              "400": _error("since is not like 30m, 24h or 7d"),
                              "401": _error("Missing or wrong bearer token"),
                              "403": _error("Admin endpoints are disabled: ADMIN_API_TOKEN is unset")}}},
            "/health": {"get": {
                "summary": "Liveness", "operationId": "health",
                "responses": {"200": _ok("The process is up", {"$ref": ref + "Health"})},
            }},
            "/ready": {"get": {
                "summary": "Readiness: the active model is healthy and the database is reachable",
                "operationId": "ready",
                "responses": {"200": _ok("Ready", {"$ref": ref + "Readiness"}),
                              "503": _ok("Not ready, with the reason", {"$ref": ref + "Readiness"})},
            }},
            "/metrics": {"get": {
                "summary": "Prometheus metrics (Bearer METRICS_TOKEN when the server sets one)",
                "operationId": "metrics",
                "security": [{}, {"metricsToken": []}],
                "responses": {"200": {"description": "Prometheus text exposition format",
                                      "content": {"text/plain": {"schema": {"type": "string"}}}},
                              "401": _error("METRICS_TOKEN is set and the request does not carry it")},
            }},
            "/openapi.json": {"get": {
                "summary": "This description", "operationId": "openapi",
                "responses": {"200": _ok("OpenAPI 3.0 document", {"type": "object"})},
            }},
        },
        "components": {
            "securitySchemes": {"adminToken": {"type": "http", "scheme": "bearer",
                                               "description": "the server's ADMIN_API_TOKEN"},
                                "metricsToken": {"type": "http", "scheme": "bearer",
                                                 "description": "the server's METRICS_TOKEN"}},
            "schemas": _schemas(max_prompt_chars) | {"RoutingPolicy": _policy_schema(version_pattern)},
        },
    }


def _schemas(max_prompt_chars: int) -> dict[str, Any]:
    return {
        "Error": {"type": "object", "required": ["error", "message"], "properties": {
            "error": {"type": "string", "description": "machine-readable code"},
            "message": {"type": "string"},
            "request_id": {"type": "string"}}},
        "ChatRequest": {"type": "object", "required": ["message"], "additionalProperties": False, "properties": {
            "message": {"type": "string", "minLength": 1, "maxLength": max_prompt_chars, "pattern": r"\S",
                        "description": f"the customer's message; surrounding whitespace is ignored, "
                                       f"at most {max_prompt_chars} characters"},
            "user_id": {"type": "string", "maxLength": MAX_USER_ID_CHARS,
                        "description": "the caller's user id; stored only as a salted hash"}}},
        "ChatResponse": {"type": "object", "required": [
            "text", "intent", "latency_ms", "tokens", "confidence", "model", "model_version", "device", "request_id"],
            "properties": {
                "text": {"type": "string"}, "intent": {"type": "string"},
                "latency_ms": {"type": "number"}, "tokens": {"type": "integer"},
                "prompt_tokens": {"type": "integer"}, "completion_tokens": {"type": "integer"},
                "confidence": {"type": "number"}, "model": {"type": "string"},
                "model_version": {"type": "string"}, "device": {"type": "string"},
                "fallback_from": STRING_OR_NULL, "cost_usd": NUMBER_OR_NULL, "request_id": {"type": "string"}}},
        "BenchmarkSummary": {"type": "object", "required": ["active_model", "latest_run", "recommendation", "live"],
                             "properties": {
            "active_model": {"type": "string"},
            "latest_run": {"type": "object", "nullable": True, "description": "null until a benchmark has run"},
            "recommendation": STRING_OR_NULL,
            "live": {"type": "object", "description": "per-model metrics of this process since it started",
                     "additionalProperties": {"type": "object"}},
            "recent": {"type": "array", "items": {"type": "object"},
                       "description": "per-model figures of every replica over the last hour (request log)"},
            "dialogue": {"type": "object", "additionalProperties": {"type": "object"},
                         "description": "admin only: per model and \"all\", the last 24 hours: containment, "
                                        "hand-off rate by reason, clarification rate and share resolved by a click, "
                                        "thumbs-up share with its Wilson 95% interval, most disliked intents"}}},
        "CanaryResult": {"type": "object", "required": ["ok", "active_model", "canary"], "properties": {
            "ok": {"type": "boolean"}, "active_model": {"type": "string"},
            "canary": {"type": "object", "properties": {"model": {"type": "string"}, "percent": {"type": "number"}}}}},
        "Routing": {"type": "object", "required": ["active_model", "policy", "budgets"], "properties": {
            "active_model": {"type": "string"}, "policy": {"$ref": "#/components/schemas/RoutingPolicy"},
            "budgets": {"type": "object", "additionalProperties": {"type": "object", "properties": {
                "spent_usd": {"type": "number"}, "limit_usd": NUMBER_OR_NULL}}}}},
        "Compare": {"type": "object", "required": ["arms", "summary"], "properties": {
            "arms": {"type": "array", "items": {"type": "object", "required": ["arm", "model", "requests"],
                                                 "properties": {"arm": {"type": "string"},
                                                                "model": {"type": "string"},
                                                                "requests": {"type": "integer"}}}},
            "summary": {"type": "array", "items": {"type": "string"}}, "since": {"type": "string"}}},
        "SwitchResult": {"type": "object", "required": ["ok", "previous", "active_model", "version"], "properties": {
            "ok": {"type": "boolean"}, "previous": {"type": "string"}, "active_model": {"type": "string"},
            "version": {"type": "string"}}},
        "Health": {"type": "object", "required": ["status"], "properties": {
            "status": {"type": "string"}, "active_model": {"type": "string"}}},
        "Readiness": {"type": "object", "required": ["ready", "active_model", "model", "database"], "properties": {
            "ready": {"type": "boolean"}, "active_model": {"type": "string"},
            "model": {"type": "object", "required": ["healthy"], "properties": {
                "healthy": {"type": "boolean"}, "reason": {"type": "string"}, "latency_ms": NUMBER_OR_NULL}},
            "database": {"type": "string", "enum": ["ok", "unreachable"]}}},
    }


def _policy_schema(version_pattern: str) -> dict[str, Any]:
    """The routing policy as PUT /routing takes it; absent or null parts are off."""
    model = {"type": "string", "pattern": version_pattern}
    share = {"type": "number", "minimum": 0, "exclusiveMinimum": True, "maximum": 100}

    def part(required: list[str], **properties: Any) -> dict[str, Any]:
        return {"type": "object", "nullable": True, "additionalProperties": False, "required": required,
                "properties": {"model": model, **properties}}

    return {"type": "object", "properties": {
        "canary": part(["model", "percent"], percent=share | {"exclusiveMaximum": True}),
        "shadow": part(["model"], percent=share),
        "escalation": part(["model", "threshold"], threshold={"type": "number", "minimum": 0, "maximum": 1},
                           out_of_scope={"type": "boolean"})}}
