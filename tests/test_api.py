"""The REST API's endpoints, their refusals (always JSON, never a 500) and admin auth."""

import pytest

from bot.api import API_ROUTES
from storage.database import Database
from tests.api_helpers import ADMIN_TOKEN, running_api, scripted_models
from tests.scripted import Scripted, ScriptedAdapter

CHAT = "/api/v1/chat"


async def test_chat_answers_with_the_pipeline_result_and_stores_the_request():
    async with running_api() as api:
        response = await api.client.post(CHAT, json={"message": "  Where is my card?  ", "user_id": "U1"},
                                         headers={"X-Request-ID": "ref-123"})
        assert response.status == 200
        body = await response.json()
        assert body["text"] == "custom says hello"
        assert (body["intent"], body["model"], body["model_version"], body["device"]) == (
            "card_arrival", "custom", "custom_0.0.0", "cpu")
        assert body["confidence"] == 0.8 and body["latency_ms"] >= 0
        assert body["tokens"] == body["prompt_tokens"] + body["completion_tokens"] == 4 + 3
        assert body["request_id"] == response.headers["X-Request-ID"]
        assert body["request_id"].startswith("ref-123.")  # the caller's id leads; ours keeps rows unique
        assert api.models["custom"].prompts == ["Where is my card?"]
        await api.runtime.db.request_log.flush()
        [row] = await api.runtime.db.request_metrics()
        assert (row["model"], row["count"], row["error_rate"]) == ("custom", 1, 0)


async def test_chat_reports_the_model_it_fell_back_from():
    models = scripted_models(custom=ScriptedAdapter("custom").enqueue(Scripted(error=RuntimeError("boom"))))
    async with running_api(models) as api:
        body = await (await api.client.post(CHAT, json={"message": "card?"})).json()
        assert (body["model"], body["fallback_from"]) == ("qlora", "custom")


async def test_every_model_failing_is_a_503_with_the_reference_id_of_the_stored_request():
    models = {name: ScriptedAdapter(name) for name in ("custom", "qlora", "gemini")}  # nothing queued: all fail
    async with running_api(models) as api:
        response = await api.client.post(CHAT, json={"message": "card?"})
        assert response.status == 503
        body = await response.json()
        assert body["error"] == "all_models_failed" and body["request_id"] in body["message"]
        await api.runtime.db.request_log.flush()
        async with api.runtime.db.engine.connect() as conn:
            from sqlalchemy import text

            stored = (await conn.execute(text("SELECT request_id, error FROM requests"))).all()
        assert [r[0] for r in stored] == [body["request_id"]] and stored[0][1]


@pytest.mark.parametrize(("kwargs", "status", "code"), [
    ({"data": "message=hi", "headers": {"Content-Type": "application/x-www-form-urlencoded"}}, 415,
     "unsupported_media_type"),
    ({"data": "hi"}, 415, "unsupported_media_type"),
    ({"data": '{"message": "hi"', "headers": {"Content-Type": "application/json"}}, 400, "malformed_json"),
    ({"data": b'{"message": "\xff"}', "headers": {"Content-Type": "application/json"}}, 400, "malformed_json"),
    ({"data": "[" * 100_000, "headers": {"Content-Type": "application/json"}}, 413, "body_too_large"),
    ({"data": "[" * 20_000, "headers": {"Content-Type": "application/json"}}, 400, "malformed_json"),
    ({"json": {}}, 422, "invalid_request"),
    ({"json": {"message": ""}}, 422, "invalid_request"),
    ({"json": {"message": " \n\t "}}, 422, "invalid_request"),
    ({"json": {"message": "x" * 4001}}, 422, "invalid_request"),
    ({"json": {"message": 42}}, 422, "invalid_request"),
    ({"json": {"message": None}}, 422, "invalid_request"),
    ({"json": ["hi"]}, 422, "invalid_request"),
    ({"json": {"message": "hi", "mesage": "typo"}}, 422, "invalid_request"),
    ({"json": {"message": "hi", "user_id": 7}}, 422, "invalid_request"),
])
async def test_bad_chat_requests_get_a_json_4xx_and_reach_no_model(kwargs, status, code):
    async with running_api() as api:
        response = await api.client.post(CHAT, **kwargs)
        assert response.status == status
        assert response.content_type == "application/json"
        body = await response.json()
        assert body["error"] == code and body["message"]
        assert all(not model.prompts for model in api.models.values())


async def test_message_limit_follows_max_prompt_chars_and_counts_after_stripping():
    async with running_api(max_prompt_chars=10) as api:
        assert (await api.client.post(CHAT, json={"message": "  " + "x" * 10 + "  "})).status == 200
        response = await api.client.post(CHAT, json={"message": "x" * 11})
        assert response.status == 422 and "limit is 10" in (await response.json())["message"]


async def test_health_and_ready():
    async with running_api() as api:
        health = await api.client.get("/health")
        assert health.status == 200 and (await health.json())["status"] == "ok"
        ready = await api.client.get("/ready")
        assert ready.status == 200
        body = await ready.json()
        assert (body["ready"], body["active_model"], body["database"]) == (True, "custom", "ok")
        assert body["model"]["healthy"] and body["model"]["latency_ms"] >= 0


async def test_not_ready_when_the_active_model_is_unhealthy():
    models = scripted_models(custom=ScriptedAdapter("custom", load_error=RuntimeError("checkpoint missing")))
    async with running_api(models) as api:
        response = await api.client.get("/ready")
        assert response.status == 503
        body = await response.json()
        assert body["ready"] is False and body["database"] == "ok"
        assert "checkpoint missing" in body["model"]["reason"]


async def test_not_ready_when_the_database_is_unreachable():
    async with running_api() as api:
        reachable = api.runtime.db
        api.runtime.db = Database("postgresql+asyncpg://postgres@127.0.0.1:9/none")  # nothing listens on port 9
        try:
            response = await api.client.get("/ready")
            body = await response.json()
            assert response.status == 503 and body["database"] == "unreachable" and body["model"]["healthy"]
            summary = await api.client.get("/benchmark/summary")
            assert summary.status == 503 and (await summary.json())["error"] == "database_unavailable"
        finally:
            await api.runtime.db.aclose()
            api.runtime.db = reachable


async def test_benchmark_summary_before_and_after_a_run(banking77_dir):
    async with running_api() as api:
        empty = await (await api.client.get("/benchmark/summary")).json()
        assert empty["latest_run"] is None and empty["recommendation"] is None
        assert empty["active_model"] == "custom"
        await api.client.post(CHAT, json={"message": "Where is my card?"})
        await api.runtime.benchmark.run(sample=4, trigger="manual", seed=1)
        await api.runtime.db.request_log.flush()
        body = await (await api.client.get("/benchmark/summary")).json()
        run = body["latest_run"]
        assert run["sample_size"] == 4 and run["trigger"] == "manual"
        assert [r["model"] for r in run["results"]] == ["custom", "qlora", "gemini"]
        assert body["recommendation"] == run["recommendation"] and "fastest" in body["recommendation"]
        assert body["live"]["custom"]["requests"] == 1  # the chat; benchmark questions are not user traffic
        assert [m["model"] for m in body["recent"]] == ["custom"] and body["recent"][0]["count"] == 1


async def test_admin_endpoints_are_disabled_while_the_token_is_unset():
    async with running_api() as api:
        response = await api.client.post("/model/switch/qlora", headers={"Authorization": "Bearer anything"})
        assert response.status == 403
        assert "ADMIN_API_TOKEN" in (await response.json())["message"]
        assert api.runtime.pipeline.active_model == "custom"


@pytest.mark.parametrize("header", [None, "Bearer wrong-token", "Basic " + ADMIN_TOKEN, "Bearer "])
async def test_switch_refuses_a_missing_or_wrong_token(header):
    async with running_api(admin_api_token=ADMIN_TOKEN) as api:
        headers = {"Authorization": header} if header else {}
        response = await api.client.post("/model/switch/qlora", headers=headers)
        assert response.status == 401 and response.headers["WWW-Authenticate"].startswith("Bearer")
        assert (await response.json())["error"] == "unauthorized"
        assert api.runtime.pipeline.active_model == "custom"


async def test_switch_with_the_token_changes_the_model_and_is_audited():
    models = scripted_models(gemini=ScriptedAdapter("gemini", load_error=RuntimeError("no API key")))
    async with running_api(models, admin_api_token=ADMIN_TOKEN) as api:
        auth = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        ok = await api.client.post("/model/switch/qlora_vllm_finetuned_model_v1.0.0", headers=auth)
        assert ok.status == 200
        assert await ok.json() == {"ok": True, "previous": "custom", "active_model": "qlora",
                                   "version": "qlora_0.0.0"}  # the scripted stand-in's version
        answer = await (await api.client.post(CHAT, json={"message": "card?"})).json()
        assert answer["model"] == "qlora"

        unknown = await api.client.post("/model/switch/gpt-9", headers=auth)
        assert unknown.status == 404 and "unknown model" in (await unknown.json())["message"]
        for odd in ("%00%20x", "CUSTOM", "custom_", "qlora_%0a", "custom_" + "x" * 101):
            response = await api.client.post(f"/model/switch/{odd}", headers=auth)
            assert response.status == 404 and (await response.json())["error"] == "unknown_model"
        unhealthy = await api.client.post("/model/switch/gemini", headers=auth)
        assert unhealthy.status == 409 and "no API key" in (await unhealthy.json())["message"]
        assert api.runtime.pipeline.active_model == "qlora"
        switches = await api.runtime.db.list_switches(10)
        assert [(s["to_model"], s["ok"], s["by"]) for s in switches] == [
            ("gemini", False, "api"), ("qlora", True, "api")]  # unknown names are refused before the switcher


async def test_openapi_describes_every_route_the_app_serves():
    async with running_api() as api:
        spec = await (await api.client.get("/openapi.json")).json()
        served = {(route.method.lower(), route.resource.canonical) for route in api.client.app.router.routes()
                  if route.method != "HEAD" and not route.resource.canonical.startswith("/slack/")}
        described = {(method, path) for path, item in spec["paths"].items() for method in item}
        assert served == described
        assert spec["components"]["schemas"]["ChatRequest"]["properties"]["message"]["maxLength"] == 4000


async def test_readiness_reuses_a_recent_health_check_and_retries_a_failed_one_sooner():
    custom = ScriptedAdapter("custom", default=Scripted("fine"))
    async with running_api(scripted_models(custom=custom)) as api:
        probe = api.client.app[API_ROUTES].readiness
        probe.failed_ttl_s = 0.0
        for _ in range(3):
            assert (await api.client.get("/ready")).status == 200
        assert len(custom.prompts) == 1  # one inference for three probes
        custom.default = None  # every call fails from now on
        probe.last.clear()
        assert (await api.client.get("/ready")).status == 503
        custom.default = Scripted("recovered")
        assert (await api.client.get("/ready")).status == 200  # the failure was not cached


async def test_a_client_over_its_rate_limit_gets_a_429_with_retry_after_and_reaches_no_model():
    async with running_api(rate_limit_api_per_min=2, trusted_proxy_hops=1) as api:
        def via_proxy(client: str) -> dict:
            return {"X-Forwarded-For": f"203.0.113.9, {client}"}  # the left entry is the client's own claim

        for _ in range(2):
            allowed = await api.client.post(CHAT, json={"message": "card?"}, headers=via_proxy("198.51.100.1"))
            assert allowed.status == 200
        refused = await api.client.post(CHAT, json={"message": "card?"}, headers=via_proxy("198.51.100.1"))
        assert refused.status == 429
        assert 1 <= int(refused.headers["Retry-After"]) <= 60
        assert (await refused.json())["error"] == "rate_limited"
        other = await api.client.post(CHAT, json={"message": "card?"}, headers=via_proxy("198.51.100.2"))
        assert other.status == 200  # limits are per client
        assert len(api.models["custom"].prompts) == 3
