"""Operational truth: the latency a user waited is the one reported everywhere, every model call is recorded,
the breaker counts model faults only, and a version string is served as that version or refused."""

import asyncio
import io
import json
import logging

from bot.conversation.messages import footer_text
from bot.json_logging import REQUEST_LOGGER, JsonFormatter
from llm.errors import AnswerRejectedError
from tests.api_helpers import running_api, scripted_models
from tests.scripted import Scripted, ScriptedAdapter
from tests.test_api_metrics import scrape
from tests.test_pipeline import make_pipeline

CHAT = "/api/v1/chat"
HANG_S = 0.3  # the first model's timeout: it hangs, so this is what every request waits at least


async def test_a_timeout_then_a_fast_fallback_reports_the_whole_wait_everywhere():
    never = asyncio.Event()
    models = scripted_models(custom=ScriptedAdapter("custom", default=Scripted(gate=never)))
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    REQUEST_LOGGER.addHandler(handler)
    previous = REQUEST_LOGGER.level
    REQUEST_LOGGER.setLevel(logging.INFO)
    try:
        async with running_api(models) as api:
            api.runtime.pipeline.options.timeouts["custom"] = HANG_S
            response = await api.client.post(CHAT, json={"message": "Where is my card?"})
            body = await response.json()
            samples = await scrape(api)
            await api.runtime.db.request_log.flush()
            [timed_out, answered] = await api.runtime.db.request_metrics()  # sorted by model
    finally:
        REQUEST_LOGGER.removeHandler(handler)
        REQUEST_LOGGER.setLevel(previous)
    assert body["model"] == "qlora" and body["fallback_from"] == "custom"
    assert body["latency_ms"] >= HANG_S * 1000  # what the user waited, not qlora's instant answer
    assert samples["bankbot_request_latency_seconds_sum"][(("model", "qlora"),)] >= HANG_S
    assert samples["bankbot_model_calls_total"][(("model", "custom"), ("outcome", "timeout"))] == 1
    assert answered["model"] == "qlora" and answered["avg_latency_ms"] >= HANG_S * 1000
    assert answered["avg_model_latency_ms"] < HANG_S * 1000
    assert (timed_out["model"], timed_out["calls"], timed_out["error_rate"]) == ("custom", 1, 1.0)
    [line] = [json.loads(x) for x in stream.getvalue().splitlines()]
    assert line["latency_ms"] >= HANG_S * 1000 and line["model_latency_ms"] < HANG_S * 1000
    assert line["calls"][0].startswith("custom:timeout:") and line["calls"][1].startswith("qlora:ok:")


async def test_footer_shows_the_total_next_to_the_models_own_time(db):
    never = asyncio.Event()
    slow = ScriptedAdapter("slow", default=Scripted(gate=never))
    fast = ScriptedAdapter("fast", default=Scripted("fast answer", confidence=0.9))
    pipeline = make_pipeline(db, slow, fast, timeouts={"slow": HANG_S})
    result = await pipeline.generate("card?")
    assert result.latency_ms >= HANG_S * 1000 > result.model_latency_ms
    text = footer_text(result)
    assert "total" in text and "model" in text and "fell back from slow" in text


async def test_every_call_is_recorded_with_its_outcome_and_a_skipped_model_counts_as_failed(db):
    flaky = ScriptedAdapter("flaky")  # nothing queued: every call fails
    steady = ScriptedAdapter("steady", default=Scripted("steady answer"))
    pipeline = make_pipeline(db, flaky, steady, breaker_failures=2, breaker_cooldown_s=600)
    for _ in range(3):
        await pipeline.generate("card?")
    await db.request_log.flush()
    async with db.engine.connect() as conn:
        from sqlalchemy import select

        from storage.models import ModelCallRecord as C
        rows = (await conn.execute(select(C.model, C.outcome, C.role, C.seq).order_by(C.id))).all()
    assert [(r.model, r.outcome, r.role) for r in rows] == [
        ("flaky", "error", "primary"), ("steady", "ok", "fallback"),
        ("flaky", "error", "primary"), ("steady", "ok", "fallback"),
        ("flaky", "skipped", "primary"), ("steady", "ok", "fallback")]
    live = pipeline.metrics()
    assert (live["flaky"]["requests"], live["flaky"]["error_rate"]) == (3, 1.0)
    assert live["flaky"]["error_kinds"] == {"RuntimeError": 2, "skipped": 1}
    assert (live["steady"]["requests"], live["steady"]["error_rate"]) == (3, 0.0)


async def test_a_rejected_answer_falls_back_without_opening_the_circuit(db):
    picky = ScriptedAdapter("picky", default=Scripted(error=AnswerRejectedError("no answer: SAFETY")))
    steady = ScriptedAdapter("steady", default=Scripted("steady answer"))
    pipeline = make_pipeline(db, picky, steady, breaker_failures=2, breaker_cooldown_s=600)
    for _ in range(5):
        assert (await pipeline.generate("card?")).model == "steady"
    assert len(picky.prompts) == 5  # never skipped: a blocked prompt says nothing about the model's health
    assert pipeline.breaker("picky").consecutive_failures == 0


async def test_a_transport_fault_opens_the_circuit(db):
    broken = ScriptedAdapter("broken", default=Scripted(error=ConnectionError("reset by peer")))
    steady = ScriptedAdapter("steady", default=Scripted("steady answer"))
    pipeline = make_pipeline(db, broken, steady, breaker_failures=2, breaker_cooldown_s=600)
    for _ in range(4):
        await pipeline.generate("card?")
    assert len(broken.prompts) == 2


async def test_a_model_still_loading_holds_a_request_only_up_to_its_timeout_and_keeps_loading(db):
    loaded = asyncio.Event()

    class SlowToLoad(ScriptedAdapter):
        async def load(self):
            self.loads += 1
            await loaded.wait()  # vLLM: minutes

    slow = SlowToLoad("slow", default=Scripted("slow answer"))
    fast = ScriptedAdapter("fast", default=Scripted("fast answer"))
    pipeline = make_pipeline(db, slow, fast, timeouts={"slow": HANG_S})
    first = await pipeline.generate("card?")
    assert (first.model, first.fallback_from) == ("fast", "slow")
    assert pipeline.factory.loading("slow")  # the request gave up waiting; the load did not
    loaded.set()
    async with asyncio.timeout(30):  # a generous deadline: the load finishes once released
        await pipeline.factory.get("slow")
    assert not pipeline.factory.loading("slow")
    assert (await pipeline.generate("card?")).model == "slow" and slow.loads == 1


async def test_each_request_row_records_its_time_to_first_token(db):
    from sqlalchemy import select

    from llm.pipeline import RequestContext
    from llm.streaming import collect, generate_stream
    from storage.models import RequestRecord as R

    model = ScriptedAdapter("model", default=Scripted("Your card is on its way. It takes a few days."))
    pipeline = make_pipeline(db, model)
    whole = await pipeline.generate("card?", RequestContext(request_id="whole"))
    _, streamed = await collect(generate_stream(pipeline, "card?", RequestContext(request_id="streamed")))
    await db.request_log.flush()
    async with db.engine.connect() as conn:
        rows = dict((await conn.execute(select(R.request_id, R.ttft_ms))).all())
    assert rows["whole"] == whole.latency_ms  # not streamed: the first words come with the whole answer
    assert rows["streamed"] == streamed.extra["ttft_ms"] <= streamed.latency_ms
