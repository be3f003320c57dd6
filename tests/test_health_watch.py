"""Background health checks: every configured model reaches `bankbot_model_healthy`, cloud models (paid calls)
are checked at their slower interval, and no check counts as user traffic."""

from __future__ import annotations

import asyncio

from bot.api.readiness import ReadinessProbe
from bot.health_watch import HealthWatch
from bot.prometheus import PrometheusMetrics
from bot.runtime import Runtime
from bot.settings import Settings
from llm.adapters.base import HEALTH_PROBE
from llm.errors import ModelUnavailableError
from tests.scripted import Scripted, ScriptedAdapter, builders


class CloudScripted(ScriptedAdapter):
    device = "cloud"


async def test_every_configured_model_is_checked_in_the_background_and_cloud_ones_less_often():
    custom = ScriptedAdapter("custom", default=Scripted("custom answers"))
    qlora = ScriptedAdapter("qlora", load_error=ModelUnavailableError("no GPU"))
    gemini = CloudScripted("gemini", default=Scripted("gemini answers"))
    settings = Settings(llm_model_version="custom", fallback_order="custom,qlora,gemini", benchmark_every_n=0)
    runtime = await Runtime.create(settings, builders=builders(custom, qlora, gemini), serving=False)
    probe = ReadinessProbe(runtime, ttl_s=0.0, failed_ttl_s=0.0)  # no cache: each due check is a real one
    watch = HealthWatch(probe, local_interval_s=0.01, cloud_interval_s=3600)
    task = asyncio.create_task(watch.run())
    try:
        deadline = asyncio.get_running_loop().time() + 60
        while min(watch.checks.get("custom", 0), watch.checks.get("qlora", 0)) < 5:
            assert asyncio.get_running_loop().time() < deadline, f"too few checks: {watch.checks}"
            await asyncio.sleep(0.02)
        assert probe.healthy() == {"custom": True, "qlora": False, "gemini": True}
        assert watch.checks["gemini"] == 1 and gemini.prompts == [HEALTH_PROBE]  # one paid call, not five
        assert set(custom.prompts) == {HEALTH_PROBE} and len(custom.prompts) >= 5

        scrape = (await PrometheusMetrics(runtime, health=probe).render()).decode()
        for name, value in (("custom", 1.0), ("qlora", 0.0), ("gemini", 1.0)):
            assert f'bankbot_model_healthy{{model="{name}"}} {value}' in scrape
        # background probes are not user traffic: no request, no request row, nothing in the live figures
        assert runtime.pipeline.request_count == 0
        assert runtime.db.request_log.pending == 0 and runtime.db.request_log.written == 0
        assert all(snapshot["requests"] == 0 for snapshot in runtime.pipeline.metrics().values())
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await runtime.aclose()
