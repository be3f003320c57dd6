"""After traffic, GET /metrics exposes the series the dashboards and alerts use; one JSON log line per request."""

import contextlib
import io
import json
import logging
from collections.abc import Iterator

from prometheus_client.parser import text_string_to_metric_families

from bot.json_logging import REQUEST_LOGGER, JsonFormatter
from tests.api_helpers import running_api, scripted_models
from tests.scripted import Scripted, ScriptedAdapter

CHAT = "/api/v1/chat"


async def scrape(api) -> dict[str, dict[tuple, float]]:
    """{sample name: {sorted label items: value}}"""
    response = await api.client.get("/metrics")
    assert response.status == 200 and response.content_type == "text/plain"
    samples: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(await response.text()):
        for sample in family.samples:
            samples.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return samples


def failing(name: str, times: int) -> ScriptedAdapter:
    return ScriptedAdapter(name, default=Scripted(f"{name} answer")).enqueue(
        *[Scripted(error=RuntimeError("boom")) for _ in range(times)])


async def test_metrics_after_traffic_cover_requests_latency_tokens_fallbacks_and_state(banking77_dir):
    models = scripted_models(custom=failing("custom", 3))  # three failures open custom's breaker
    models["qlora"].enqueue(Scripted("qlora answer", delay_s=0.03), "qlora answer", "qlora answer")
    async with running_api(models, breaker_failures=3, breaker_cooldown_s=600) as api:
        for _ in range(3):
            assert (await api.client.post(CHAT, json={"message": "Where is my card?"})).status == 200
        for name in ("custom", "qlora", "gemini"):
            models[name].enqueue(Scripted(error=RuntimeError("down")))
        assert (await api.client.post(CHAT, json={"message": "card?"})).status == 503
        await api.runtime.benchmark.run(models=["qlora", "gemini"], sample=3, seed=0)
        m = await scrape(api)

    requests = m["bankbot_requests_total"]
    assert requests[(("model", "qlora"), ("outcome", "ok"))] == 3
    assert requests[(("model", "custom"), ("outcome", "error"))] == 1  # the active model, for a total failure
    assert m["bankbot_request_latency_seconds_count"][(("model", "qlora"),)] == 3
    assert m["bankbot_request_latency_seconds_sum"][(("model", "qlora"),)] >= 0.03
    assert m["bankbot_request_latency_seconds_bucket"][(("le", "0.025"), ("model", "qlora"))] == 2
    assert m["bankbot_tokens_total"][(("kind", "prompt"), ("model", "qlora"))] == 3 * 4
    assert m["bankbot_tokens_total"][(("kind", "completion"), ("model", "qlora"))] == 3 * 2
    assert m["bankbot_fallbacks_total"][(("from_model", "custom"), ("to_model", "qlora"))] == 3
    assert m["bankbot_circuit_breaker_state"] == {
        (("model", "custom"),): 2, (("model", "qlora"),): 0, (("model", "gemini"),): 0}
    assert m["bankbot_circuit_breaker_consecutive_failures"][(("model", "custom"),)] == 3
    assert m["bankbot_active_model"] == {
        (("model", "custom"),): 1, (("model", "qlora"),): 0, (("model", "gemini"),): 0}
    assert set(m["bankbot_benchmark_accuracy"]) == {(("model", "qlora"),), (("model", "gemini"),)}
    assert (("model", "qlora"), ("quantile", "0.99")) in m["bankbot_benchmark_latency_seconds"]
    assert m["bankbot_benchmark_last_run_timestamp_seconds"][()] > 1.7e9
    assert "bankbot_request_log_pending" in m and "bankbot_request_log_dropped_total" in m


async def test_model_health_gauge_follows_the_readiness_probe():
    models = scripted_models(custom=ScriptedAdapter("custom", load_error=RuntimeError("no checkpoint")))
    async with running_api(models) as api:
        assert "bankbot_model_healthy" not in await scrape(api)  # nothing checked yet
        assert (await api.client.get("/ready")).status == 503
        assert (await scrape(api))["bankbot_model_healthy"] == {(("model", "custom"),): 0}


async def test_each_app_has_its_own_registry():
    async with running_api() as first, running_api() as second:
        await first.client.post(CHAT, json={"message": "hello"})
        assert (await scrape(first))["bankbot_requests_total"] == {
            (("model", "custom"), ("outcome", "ok")): 1, (("model", "custom"), ("outcome", "error")): 0}
        assert "bankbot_requests_total" not in await scrape(second)


@contextlib.contextmanager
def every_log_record() -> Iterator[io.StringIO]:
    """Everything any logger emits, at any level, formatted with its arguments and tracebacks: a handler on the
    root logger at DEBUG, and every logger (those created later too) set to pass its records up to it."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    handler.setLevel(logging.DEBUG)
    root, manager = logging.getLogger(), logging.Logger.manager
    saved_root, saved_disable = root.level, manager.disable
    loggers = [logger for logger in manager.loggerDict.values() if isinstance(logger, logging.Logger)]
    saved = [(logger, logger.level, logger.propagate, logger.disabled) for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.NOTSET)
        logger.propagate, logger.disabled = True, False
    root.setLevel(logging.DEBUG)
    logging.disable(logging.NOTSET)
    root.addHandler(handler)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(saved_root)
        logging.disable(saved_disable)
        for logger, level, propagate, disabled in saved:
            logger.setLevel(level)
            logger.propagate, logger.disabled = propagate, disabled


async def test_one_json_log_line_per_request_and_no_personal_data_in_any_log():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    REQUEST_LOGGER.addHandler(handler)
    secret = "my card 4111 1111 1111 1111, mail jo.bloggs@example.com, IBAN GB82 WEST 1234 5698 7654 32 at Zyxwv"
    models = scripted_models(custom=failing("custom", 1))
    try:
        with every_log_record() as everything:
            async with running_api(models, store_messages=True) as api:
                ok = await (await api.client.post(CHAT, json={"message": secret},
                                                  headers={"X-Request-ID": "first"})).json()
                await api.client.post(CHAT, json={"message": secret}, headers={"X-Request-ID": "second"})
                await api.client.post(CHAT, json={"message": ""})  # refused before the pipeline: no request line
    finally:
        REQUEST_LOGGER.removeHandler(handler)
    text = stream.getvalue()
    lines = [json.loads(line) for line in text.splitlines()]
    logged = everything.getvalue()
    assert "bankbot.requests INFO" in logged and "first" in logged  # the capture does see the request log
    for personal in ("4111", "jo.bloggs", "example.com", "GB82", "WEST"):
        assert personal not in logged, f"{personal!r} was logged: {logged[logged.find(personal) - 300:][:600]}"
    assert [(line["request_id"].split(".")[0], line["model"], line["outcome"]) for line in lines] == [
        ("first", "qlora", "fallback"), ("second", "custom", "ok")]
    assert ok["request_id"] == lines[0]["request_id"] and lines[0]["fallback_from"] == "custom"
    assert all(line["latency_ms"] >= 0 and line["source"] == "api" and line["logger"] == "bankbot.requests"
               for line in lines)
    assert "Zyxwv" not in text and "4111" not in text  # the request log holds no message text at all


class CachingAdapter(ScriptedAdapter):
    """A scripted model that reports an answer cache, as the custom model does."""

    def get_metrics(self):
        return super().get_metrics() | {"answer_cache_hit_rate": 0.75}


class PaidAdapter(ScriptedAdapter):
    """A scripted cloud model with a price, as Gemini is."""

    device = "cloud"
    sends_data_off_host = True
    estimated_call_cost_usd = 0.001


class GpuAdapter(ScriptedAdapter):
    """A scripted model on a GPU that reports its device's utilization, as the vLLM server backend does."""

    device = "gpu"

    async def device_utilization(self):
        return 0.42


async def test_model_calls_confidence_utilization_and_cache_ratio_are_exported():
    models = scripted_models(custom=failing("custom", 1), qlora=CachingAdapter("qlora", default=Scripted(
        "qlora answer", "card_arrival", 0.93)), gemini=GpuAdapter("gemini", default=Scripted()))
    async with running_api(models) as api:
        assert (await api.client.post(CHAT, json={"message": "where is my card"})).status == 200
        await api.runtime.factory.get("gemini")  # loaded, as serve's warm-up loads every configured model
        samples = await scrape(api)
    calls = samples["bankbot_model_calls_total"]
    assert calls[(("model", "custom"), ("outcome", "error"))] == 1
    assert calls[(("model", "qlora"), ("outcome", "ok"))] == 1
    assert samples["bankbot_model_call_latency_seconds_count"][(("model", "custom"),)] == 1
    assert samples["bankbot_confidence_count"][(("model", "qlora"),)] == 1
    assert samples["bankbot_confidence_bucket"][(("le", "0.9"), ("model", "qlora"))] == 0
    assert samples["bankbot_confidence_bucket"][(("le", "0.95"), ("model", "qlora"))] == 1
    assert samples["bankbot_answer_cache_hit_ratio"][(("model", "qlora"),)] == 0.75
    utilization = samples["bankbot_device_utilization"]
    assert 0 <= utilization[(("device", "cpu"), ("model", "qlora"))] <= 1
    assert utilization[(("device", "gpu"), ("model", "gemini"))] == 0.42


async def test_every_series_the_alerts_use_is_exposed():
    import re
    from pathlib import Path

    import yaml

    rules = yaml.safe_load((Path(__file__).parent.parent / "manifests" / "prometheus-alerts.yaml").read_text())
    alerts = {rule["alert"]: rule["expr"] for group in rules["groups"] for rule in group["rules"]}
    assert {"BankbotHighLatency", "BankbotHighErrorRate", "BankbotModelUnhealthy"} <= set(alerts)
    models = scripted_models(custom=ScriptedAdapter("custom", load_error=RuntimeError("no checkpoint")),
                             qlora=CachingAdapter("qlora", default=Scripted("qlora answer")),
                             gemini=PaidAdapter("gemini", default=Scripted("gemini answer", cost_usd=0.001)))
    async with running_api(models) as api:
        await api.client.post(CHAT, json={"message": "hello"})
        await api.runtime.factory.get("gemini")  # loaded, as serve's warm-up loads every configured model
        await api.client.get("/ready")
        exposed = set(await scrape(api))
    for name, expr in alerts.items():
        used = set(re.findall(r"\bbankbot_[a-z_]+", expr))
        assert used and used <= exposed, f"{name} uses {used - exposed}, not exposed"
