"""GPU utilization comes from vLLM's own metrics: the vllm-server backend reads the server's /metrics."""

from aiohttp import web

from llm.qlora.backend_server import ServerBackend
from llm.qlora.vllm_metrics import kv_cache_usage

V1_METRICS = """# HELP vllm:kv_cache_usage_perc KV-cache usage. 1 means 100 percent usage.
# TYPE vllm:kv_cache_usage_perc gauge
vllm:kv_cache_usage_perc{engine="0",model_name="meta-llama/Llama-3.1-8B-Instruct"} 0.25
vllm:kv_cache_usage_perc{engine="1",model_name="meta-llama/Llama-3.1-8B-Instruct"} 0.75
vllm:num_requests_running{engine="0",model_name="meta-llama/Llama-3.1-8B-Instruct"} 3.0
"""
OLD_METRICS = 'vllm:gpu_cache_usage_perc{model_name="llama"} 0.4\nvllm:gpu_cache_usage_percent_other 9\n'


def test_kv_cache_usage_reads_both_gauge_names_and_nothing_else():
    assert kv_cache_usage(V1_METRICS) == 0.5
    assert kv_cache_usage(OLD_METRICS) == 0.4
    assert kv_cache_usage("vllm:num_requests_running 3.0\n") is None


async def test_the_server_backend_reads_the_servers_metrics():
    async def metrics(request: web.Request) -> web.Response:
        return web.Response(text=V1_METRICS)

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    try:
        assert await ServerBackend(f"http://127.0.0.1:{port}/v1").device_utilization() == 0.5
        assert await ServerBackend(f"http://127.0.0.1:{port}/nowhere/v1").device_utilization() is None
    finally:
        await runner.cleanup()
    assert await ServerBackend(f"http://127.0.0.1:{port}/v1").device_utilization() is None  # server gone
