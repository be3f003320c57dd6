"""Anonymous readers of GET /benchmark/summary see figures, not failure reasons, hosts, URLs or costs; the admin
token shows everything. GET /metrics needs METRICS_TOKEN when it is set."""

import json

from tests.api_helpers import ADMIN_TOKEN, running_api, scripted_models
from tests.scripted import Scripted, ScriptedAdapter

SECRET_REASON = "cannot reach http://10.1.2.3:8000/v1 (vllm.internal.bank)"


class Costly(ScriptedAdapter):
    device = "cloud"
    sends_data_off_host = True


async def test_anonymous_summary_hides_reasons_hosts_and_costs_the_admin_sees_them(banking77_dir):
    models = scripted_models(qlora=ScriptedAdapter("qlora", load_error=RuntimeError(SECRET_REASON)),
                             gemini=Costly("gemini", default=Scripted(cost_usd=0.0123)))
    async with running_api(models, admin_api_token=ADMIN_TOKEN) as api:
        await api.client.post("/api/v1/chat", json={"message": "Where is my card?"})
        await api.runtime.benchmark.run(sample=3, trigger="manual", seed=1)
        await api.runtime.db.request_log.flush()
        anonymous = await api.client.get("/benchmark/summary")
        admin = await api.client.get("/benchmark/summary", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
        wrong = await api.client.get("/benchmark/summary", headers={"Authorization": "Bearer nope"})
        public, full = await anonymous.json(), await admin.json()
    assert (anonymous.status, admin.status, wrong.status) == (200, 200, 401)
    text = json.dumps(public)
    assert "10.1.2.3" not in text and "vllm.internal" not in text and "cost" not in text and "reason" not in text
    results = {r["model"]: r for r in public["latest_run"]["results"]}
    assert results["qlora"]["available"] is False and results["custom"]["accuracy"] is not None
    assert public["recommendation"] == full["recommendation"] and public["live"]["custom"]["requests"] == 1
    full_results = {r["model"]: r for r in full["latest_run"]["results"]}
    assert SECRET_REASON in full_results["qlora"]["reason"]
    assert full_results["gemini"]["cost_usd"] > 0


async def test_metrics_need_the_metrics_token_when_it_is_set():
    async with running_api(metrics_token="scrape-me") as api:
        assert (await api.client.get("/metrics")).status == 401
        wrong = await api.client.get("/metrics", headers={"Authorization": "Bearer nope"})
        right = await api.client.get("/metrics", headers={"Authorization": "Bearer scrape-me"})
        assert (wrong.status, right.status) == (401, 200)
        assert "bankbot_requests" in await right.text()
    async with running_api() as api:  # unset: open, as before
        assert (await api.client.get("/metrics")).status == 200
