"""The benchmark does not compete with customers and spends no money nobody asked for: a model whose circuit is
open is skipped, queueing behind live traffic is reported apart from latency, and the periodic run's paid calls
stay within BENCHMARK_BUDGET_USD_PER_DAY, counted across replicas through the database."""

from llm.banking77 import Example
from llm.benchmark import BenchmarkRunner
from llm.config import LLMSettings
from llm.factory import ModelFactory
from llm.pipeline import BankingLLMPipeline, PipelineOptions
from llm.priority import is_background
from tests.scripted import Scripted, ScriptedAdapter, builders

EXAMPLES = [Example(f"where is my card {i}", "card_arrival") for i in range(10)]


class PaidAdapter(ScriptedAdapter):
    device = "cloud"
    sends_data_off_host = True
    estimated_call_cost_usd = 0.25


def runner(db, tmp_path, adapter, budget=1.0, tag="a") -> BenchmarkRunner:
    factory = ModelFactory(LLMSettings(benchmark_budget_usd_per_day=budget), builders(adapter))
    return BenchmarkRunner(factory, lambda: EXAMPLES, db, tmp_path / f"{tag}.jsonl", [adapter.name], concurrency=1)


async def test_periodic_runs_stop_at_the_daily_budget_across_replicas(db, tmp_path):
    paid = PaidAdapter("paid", default=Scripted(cost_usd=0.25))
    first = await runner(db, tmp_path, paid).run(sample=10, trigger="periodic", seed=0)
    [result] = first.results
    assert (result.n, result.cost_usd) == (4, 1.0)  # four calls of $0.25, then the limit
    assert "6 question(s) not asked" in result.reason and len(paid.prompts) == 4
    second = await runner(db, tmp_path, paid, tag="b").run(sample=10, trigger="periodic", seed=1)  # a replica
    assert (second.results[0].n, second.results[0].available, len(paid.prompts)) == (0, False, 4)
    manual = await runner(db, tmp_path, paid).run(sample=3, trigger="manual", seed=2)  # an admin asked for it
    assert manual.results[0].n == 3 and len(paid.prompts) == 7


async def test_the_estimate_grows_to_the_dearest_call_so_no_run_overspends(db, tmp_path):
    paid = PaidAdapter("paid", default=Scripted(cost_usd=0.4))  # dearer than its estimate of 0.25
    [result] = (await runner(db, tmp_path, paid).run(sample=10, trigger="periodic", seed=0)).results
    assert result.cost_usd <= 1.0 and result.n == 2


async def test_a_model_whose_circuit_is_open_is_not_benchmarked(db, tmp_path):
    broken = ScriptedAdapter("broken")  # every call fails
    bench = runner(db, tmp_path, broken)
    pipeline = BankingLLMPipeline(bench.factory, db, PipelineOptions(fallback_order=["broken"], breaker_failures=1,
                                  breaker_cooldown_s=600, benchmark_every_n=0), default_model="broken", benchmark=bench)
    try:
        await pipeline.generate("card?")
    except Exception:  # noqa: BLE001 - the one model failed: its circuit opens
        pass
    asked = len(broken.prompts)
    [result] = (await bench.run(sample=5, trigger="manual", seed=0)).results
    assert not result.available and result.reason.startswith("skipped: circuit open")
    assert len(broken.prompts) == asked


async def test_queueing_behind_live_traffic_is_reported_apart_and_calls_are_background(db, tmp_path):
    seen = []

    class Watching(ScriptedAdapter):
        async def _generate(self, prompt):
            seen.append(is_background())
            return await super()._generate(prompt)

    model = Watching("queued", default=Scripted(latency_ms=8.0, extra={"queue_ms": 5.0}))
    [result] = (await runner(db, tmp_path, model).run(sample=4, trigger="manual", seed=0)).results
    assert (result.latency_p50_ms, result.queue_p50_ms) == (3.0, 5.0)
    assert seen == [True] * 4
    [stored] = (await db.latest_benchmark_runs(1))[0]["results"]
    assert stored["queue_p50_ms"] == 5.0
