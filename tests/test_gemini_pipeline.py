"""The pipeline falls back from Gemini (real adapter, fake server) when Gemini fails or has no key."""

from __future__ import annotations

import pytest

from llm.adapters.gemini import GeminiAdapter
from llm.config import LLMSettings
from llm.factory import ModelFactory
from llm.pipeline import BankingLLMPipeline, PipelineOptions
from tests.fake_gemini import FakeGemini
from tests.scripted import Scripted, ScriptedAdapter


@pytest.fixture
async def fake():
    server = await FakeGemini().start()
    yield server
    await server.stop()


def gemini_then_custom(db, backup: ScriptedAdapter) -> BankingLLMPipeline:
    factory = ModelFactory(LLMSettings(), {"gemini": GeminiAdapter, "custom": lambda settings, version: backup})
    options = PipelineOptions(fallback_order=["gemini", "custom"], benchmark_every_n=0)
    return BankingLLMPipeline(factory, db, options, default_model="gemini")


async def test_gemini_failing_with_500s_falls_back_to_the_next_model(fake, db, monkeypatch):
    monkeypatch.setenv("GEMINI_RETRY_INITIAL_DELAY_S", "0.01")
    monkeypatch.setattr(GeminiAdapter, "retry_jitter_s", 0.01)
    monkeypatch.setenv("GEMINI_API_KEY", "test-key")
    monkeypatch.setenv("GEMINI_BASE_URL", fake.url)
    fake.default = FakeGemini.status(500)
    backup = ScriptedAdapter("custom", default=Scripted("Your card is on its way.", "card_arrival", 0.8))
    pipeline = gemini_then_custom(db, backup)
    try:
        result = await pipeline.generate("Where is my card 4111 1111 1111 1111?")
    finally:
        await pipeline.aclose()
    assert (result.model, result.fallback_from) == ("custom", "gemini")
    assert len(fake.requests) == LLMSettings().gemini_retry_attempts
    assert all(b"4111" not in r.body for r in fake.requests)


async def test_gemini_without_a_key_falls_back_and_says_why(fake, db):
    backup = ScriptedAdapter("custom", default=Scripted("Your card is on its way.", "card_arrival", 0.8))
    pipeline = gemini_then_custom(db, backup)
    try:
        result = await pipeline.generate("Where is my card?")
        health = await pipeline.health()
    finally:
        await pipeline.aclose()
    assert (result.model, result.fallback_from) == ("custom", "gemini")
    assert not health["gemini"].healthy and "no API key" in health["gemini"].reason
    assert fake.requests == []


async def test_a_version_string_is_served_as_that_version_or_refused(fake, db, monkeypatch):
    """`/llm-switch gemini_2.5_pro_v1.0.0` makes the calls go to gemini-2.5-pro; a version the adapter cannot
    serve is refused with the ones it can, and the active model stays as it was."""
    monkeypatch.setenv("GEMINI_API_KEY", "test-key")
    monkeypatch.setenv("GEMINI_BASE_URL", fake.url)
    fake.default = FakeGemini.reply({"intent": "card_arrival", "confidence": 0.9, "answer": "On its way."})
    backup = ScriptedAdapter("custom", default=Scripted("backup answer"))
    factory = ModelFactory(LLMSettings(), {"gemini": GeminiAdapter, "custom": lambda settings, version: backup})
    pipeline = BankingLLMPipeline(factory, db, PipelineOptions(fallback_order=["custom", "gemini"],
                                                               benchmark_every_n=0), default_model="custom")
    try:
        refused = await pipeline.switch_model("gemini_9.9_turbo_v1.0.0", by="test")
        assert not refused.ok and pipeline.active_model == "custom"
        assert "gemini_2.5_pro_v1.0.0" in refused.reason  # the versions it can serve
        switched = await pipeline.switch_model("gemini_2.5_pro_v1.0.0", by="test")
        assert switched.ok and switched.served == "gemini_2.5_pro_v1.0.0"
        result = await pipeline.generate("Where is my card?")
    finally:
        await pipeline.aclose()
    assert (result.model, result.model_version) == ("gemini", "gemini_2.5_pro_v1.0.0")
    assert {r.model for r in fake.requests} == {"gemini-2.5-pro"}  # health check and request alike
