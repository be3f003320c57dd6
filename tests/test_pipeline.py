import asyncio

import pytest

from llm.banking77 import Example
from llm.benchmark import BenchmarkRunner
from llm.config import LLMSettings
from llm.errors import AllModelsFailedError, InvalidPromptError
from llm.factory import ModelFactory
from llm.pipeline import BankingLLMPipeline, PipelineOptions, RequestContext
from tests.scripted import Scripted, ScriptedAdapter, builders


def make_pipeline(db, *adapters, benchmark=None, **options):
    factory = ModelFactory(LLMSettings(), builders(*adapters))
    names = [a.name for a in adapters]
    opts = PipelineOptions(fallback_order=names, **options)
    return BankingLLMPipeline(factory, db, opts, default_model=names[0], benchmark=benchmark)


async def test_active_model_answers_and_request_row_is_stored(db):
    primary = ScriptedAdapter("primary").enqueue(Scripted("Your card is on its way.", "card_arrival", 0.97))
    pipeline = make_pipeline(db, primary, ScriptedAdapter("backup"))
    result = await pipeline.generate("Where is my card?", RequestContext(source="cli", user_id="U123"))
    assert (result.text, result.intent, result.model, result.fallback_from) == (
        "Your card is on its way.", "card_arrival", "primary", None)
    await db.request_log.flush()
    [row] = await db.request_metrics()
    assert (row["model"], row["count"], row["error_rate"]) == ("primary", 1, 0)


async def test_falls_back_in_order_and_records_the_model_it_fell_back_from(db):
    first = ScriptedAdapter("first").enqueue(Scripted(error=RuntimeError("boom")))
    second = ScriptedAdapter("second").enqueue(Scripted(error=ValueError("bad output")))
    third = ScriptedAdapter("third").enqueue("third answers")
    pipeline = make_pipeline(db, first, second, third)
    result = await pipeline.generate("Where is my card?")
    assert result.model == "third"
    assert result.fallback_from == "first"
    assert first.prompts and second.prompts  # tried in order before the third
    assert pipeline.fallbacks == 1


async def test_a_hanging_model_times_out_and_the_next_one_answers(db):
    hang = asyncio.Event()  # never set
    slow = ScriptedAdapter("slow").enqueue(Scripted(gate=hang))
    fast = ScriptedAdapter("fast").enqueue("fast answer")
    pipeline = make_pipeline(db, slow, fast, timeouts={"slow": 0.05})
    result = await pipeline.generate("hello bank")
    assert result.model == "fast" and result.fallback_from == "slow"
    assert slow.metrics.errors == 1


async def test_all_models_failing_raises_one_error_with_every_reason(db):
    a = ScriptedAdapter("a").enqueue(Scripted(error=RuntimeError("gpu on fire")))
    b = ScriptedAdapter("b", load_error=RuntimeError("no API key"))
    pipeline = make_pipeline(db, a, b)
    with pytest.raises(AllModelsFailedError) as info:
        await pipeline.generate("Where is my card?")
    assert set(info.value.failures) == {"a", "b"}
    assert "gpu on fire" in info.value.failures["a"]
    assert "no API key" in info.value.failures["b"]
    await db.request_log.flush()
    a_row, b_row = await db.request_metrics()  # charged to each model it tried
    assert (a_row["model"], a_row["count"], a_row["calls"], a_row["error_rate"]) == ("a", 1, 1, 1.0)
    assert (b_row["model"], b_row["count"], b_row["calls"], b_row["error_rate"]) == ("b", 0, 1, 1.0)
    assert {m: pipeline.metrics()[m]["error_rate"] for m in ("a", "b")} == {"a": 1.0, "b": 1.0}


async def test_circuit_breaker_skips_a_failing_model_then_tries_it_again(db):
    flaky = ScriptedAdapter("flaky")  # nothing queued: every call fails
    steady = ScriptedAdapter("steady", default=Scripted("steady answer"))
    now = [0.0]
    pipeline = make_pipeline(db, flaky, steady, breaker_failures=3, breaker_cooldown_s=30, clock=lambda: now[0])
    for _ in range(3):
        assert (await pipeline.generate("card?")).model == "steady"
    assert len(flaky.prompts) == 3
    result = await pipeline.generate("card?")  # circuit open: flaky is not called
    assert len(flaky.prompts) == 3 and result.fallback_from == "flaky"
    now[0] += 31  # cool-down over: one trial call
    flaky.enqueue("flaky recovered")
    result = await pipeline.generate("card?")
    assert result.model == "flaky" and pipeline.breaker("flaky").consecutive_failures == 0


async def test_empty_and_oversized_prompts_are_refused_before_any_model(db):
    model = ScriptedAdapter("m", default=Scripted())
    pipeline = make_pipeline(db, model, max_prompt_chars=50)
    with pytest.raises(InvalidPromptError, match="empty"):
        await pipeline.generate("   ")
    with pytest.raises(InvalidPromptError, match="limit is 50"):
        await pipeline.generate("x" * 51)
    assert model.prompts == []


async def test_periodic_benchmark_runs_in_background_without_delaying_the_nth_request(db, tmp_path):
    release = asyncio.Event()
    events: list[str] = []
    user_model = ScriptedAdapter("user", default=Scripted("hi", "card_arrival"))
    bench_model = ScriptedAdapter("bench", default=Scripted(intent="card_arrival", gate=release))
    factory = ModelFactory(LLMSettings(), builders(user_model, bench_model))
    examples = [Example("Where is my card?", "card_arrival"), Example("Top up failed", "top_up_failed")]
    runner = BenchmarkRunner(factory, lambda: examples, db, tmp_path / "bench.jsonl", ["bench"])
    pipeline = BankingLLMPipeline(factory, db, PipelineOptions(fallback_order=["user"], benchmark_every_n=3),
                                  default_model="user", benchmark=runner)
    for _ in range(2):
        await pipeline.generate("hello")
    assert pipeline.benchmark_task is None
    await pipeline.generate("third request")
    events.append("third request answered")
    task = pipeline.benchmark_task
    assert task is not None and not task.done()  # the benchmark waits on `release`, the request did not
    assert pipeline.start_background_benchmark() is None  # at most one at a time
    task.add_done_callback(lambda _: events.append("benchmark finished"))
    release.set()
    await task
    assert events == ["third request answered", "benchmark finished"]
    [run] = await db.latest_benchmark_runs(1)
    assert run["trigger"] == "periodic"
    assert run["results"][0]["model"] == "bench" and run["results"][0]["accuracy"] == 0.5
    assert (tmp_path / "bench.jsonl").read_text().count("\n") == 1


async def test_switch_model_is_audited_and_shared_through_the_database(db):
    a = ScriptedAdapter("a", default=Scripted("from a"))
    b = ScriptedAdapter("b", default=Scripted("from b"))
    broken = ScriptedAdapter("broken", load_error=RuntimeError("weights missing"))
    pipeline = make_pipeline(db, a, b, broken)
    await pipeline.start()
    ok = await pipeline.switch_model("b", by="U_ADMIN")
    assert ok.ok and (ok.previous, ok.target) == ("a", "b")
    assert (await pipeline.generate("hi")).model == "b"
    unknown = await pipeline.switch_model("gpt-9", by="U_ADMIN")
    assert not unknown.ok and "unknown model" in unknown.reason
    unhealthy = await pipeline.switch_model("broken", by="U_ADMIN")
    assert not unhealthy.ok and "weights missing" in unhealthy.reason
    assert pipeline.active_model == "b"
    switches = await db.list_switches(10)
    assert [(s["from_model"], s["to_model"], s["ok"], s["by"]) for s in switches] == [
        ("b", "broken", False, "U_ADMIN"), ("b", "gpt-9", False, "U_ADMIN"), ("a", "b", True, "U_ADMIN")]
    # A second replica on the same database starts on the switched model.
    replica = make_pipeline(db, ScriptedAdapter("a"), ScriptedAdapter("b"), ScriptedAdapter("broken"))
    await replica.start()
    assert replica.active_model == "b"
    await pipeline.aclose()
    await replica.aclose()


async def test_changed_llm_model_version_wins_over_the_stored_switch(db):
    def models():
        return [ScriptedAdapter(n, default=Scripted()) for n in ("a", "b", "c")]

    first = make_pipeline(db, *models())  # LLM_MODEL_VERSION=a
    await first.start()
    await first.switch_model("b", by="admin")
    await first.aclose()
    again = make_pipeline(db, *models())  # restarted with the same LLM_MODEL_VERSION: the switch persists
    await again.start()
    assert again.active_model == "b"
    await again.aclose()
    c, a, b = ScriptedAdapter("c"), ScriptedAdapter("a"), ScriptedAdapter("b")
    changed = make_pipeline(db, c, a, b)  # LLM_MODEL_VERSION=c, as after `cp .env.c .env`
    await changed.start()
    assert changed.active_model == "c"
    await changed.aclose()


async def test_one_off_commands_never_change_the_active_model_and_a_server_audits_a_config_change(db):
    def models():
        return [ScriptedAdapter(n, default=Scripted()) for n in ("a", "b")]

    server = make_pipeline(db, *models())  # a server started with LLM_MODEL_VERSION=a
    await server.start()
    await server.aclose()
    b_first = list(reversed(models()))
    cli = make_pipeline(db, *b_first)  # `bankbot bench` in a shell whose LLM_MODEL_VERSION=b
    await cli.start(apply_configured=False)
    assert cli.active_model == "a"  # it reads the active model, and changes nothing
    restarted = make_pipeline(db, *reversed(models()))  # the server restarted with LLM_MODEL_VERSION=b
    await restarted.start()
    assert restarted.active_model == "b"
    await restarted.aclose()
    [switch] = await db.list_switches(5)
    assert (switch["from_model"], switch["to_model"], switch["by"], switch["ok"]) == ("a", "b", "startup", True)
