"""The Gemini adapter runs the real google-genai SDK over HTTP against a fake Gemini server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json

import pytest

from llm.adapters.base import OUT_OF_SCOPE, HealthStatus
from llm.adapters.gemini import NO_API_KEY, GeminiAdapter
from llm.config import LLMSettings
from llm.errors import ModelResponseError, ModelTimeoutError, ModelUnavailableError
from llm.knowledge_base import load_knowledge_base
from tests.fake_gemini import FakeGemini

KEY = "test-key-123"
REPLY = {"intent": "card_arrival", "confidence": 0.87, "answer": "Your card should arrive soon; track it in the app."}


@pytest.fixture
async def fake():
    server = await FakeGemini().start()
    yield server
    await server.stop()


@pytest.fixture(autouse=True)
def fast_retries(monkeypatch):
    monkeypatch.setenv("GEMINI_RETRY_INITIAL_DELAY_S", "0.01")
    monkeypatch.setattr(GeminiAdapter, "retry_max_delay_s", 0.05)
    monkeypatch.setattr(GeminiAdapter, "retry_jitter_s", 0.01)


@pytest.fixture
def env(fake, monkeypatch):
    """GEMINI_* pointing at the fake server; returns a function that builds settings with more env vars."""
    monkeypatch.setenv("GEMINI_API_KEY", KEY)
    monkeypatch.setenv("GEMINI_BASE_URL", fake.url)

    def settings(**extra: str) -> LLMSettings:
        for key, value in extra.items():
            monkeypatch.setenv(key, value)
        return LLMSettings()

    return settings


@pytest.fixture
async def gemini(env):
    adapter = GeminiAdapter(env())
    await adapter.load()
    yield adapter
    await adapter.aclose()


async def test_an_answer_is_parsed_into_intent_confidence_and_gemini_s_grounded_words(fake, gemini):
    fake.script(FakeGemini.reply(REPLY))
    result = await gemini.generate("Where is my new card? It still hasn't come.")
    kb = load_knowledge_base()
    assert (result.intent, result.confidence, result.model, result.device) == ("card_arrival", 0.87, "gemini", "cloud")
    assert result.text == REPLY["answer"]  # faithful to the entry: Gemini's own words (llm/grounding.py)
    assert result.extra["model_answer"] == REPLY["answer"] and result.extra["grounded_on"] == "card_arrival"
    assert result.extra["model_id"] == "gemini-2.0-flash-001"
    assert result.model_version == "gemini_2.0_flash_v1.0.0"

    [request] = fake.requests
    assert (request.version, request.model) == ("v1beta", "gemini-2.0-flash")
    assert request.headers["x-goog-api-key"] == KEY
    body = request.json
    assert body["contents"][0]["parts"][0]["text"] == "Where is my new card? It still hasn't come."
    instruction = body["systemInstruction"]["parts"][0]["text"]
    for intent in kb.intents:
        assert f"- {intent}: {kb.answer(intent)}" in instruction
    config = body["generationConfig"]
    assert config["responseMimeType"] == "application/json"
    schema = config["responseSchema"]
    assert schema["properties"]["intent"]["enum"] == [*kb.intents, OUT_OF_SCOPE]
    assert set(schema["required"]) == {"intent", "confidence", "answer"}


async def test_out_of_scope_gets_the_out_of_scope_answer(fake, gemini):
    fake.script(FakeGemini.reply({"intent": OUT_OF_SCOPE, "confidence": 0.95, "answer": "Hello!"}))
    result = await gemini.generate("hi there")
    assert result.intent == OUT_OF_SCOPE
    assert result.text == load_knowledge_base().out_of_scope_answer


async def test_tokens_come_from_usage_metadata_and_cost_from_the_price_table(fake, env):
    adapter = GeminiAdapter(env(GEMINI_MODEL="gemini-2.5-flash"))
    await adapter.load()
    fake.script(FakeGemini.reply(REPLY, prompt_tokens=6000, output_tokens=80, thoughts_tokens=20),
                FakeGemini.reply(REPLY, prompt_tokens=4000, output_tokens=50))
    first = await adapter.generate("Where is my card?")
    second = await adapter.generate("Where is my card?")
    await adapter.aclose()

    assert (first.prompt_tokens, first.completion_tokens) == (6000, 100)  # thinking is billed as output
    assert first.cost_usd == pytest.approx((6000 * 0.30 + 100 * 2.50) / 1e6)
    assert second.cost_usd == pytest.approx((4000 * 0.30 + 50 * 2.50) / 1e6)
    assert fake.requests[0].model == "gemini-2.5-flash"
    assert adapter.version == "gemini_2.5_flash_v1.0.0"
    metrics = adapter.get_metrics()
    assert (metrics["requests"], metrics["prompt_tokens"], metrics["completion_tokens"]) == (2, 10000, 150)
    assert metrics["cost_usd"] == pytest.approx(first.cost_usd + second.cost_usd)


async def test_price_table_override_and_unpriced_models(fake, env, monkeypatch):
    monkeypatch.setenv("GEMINI_PRICE_TABLE", json.dumps({"gemini-9-ultra": [2.0, 20.0]}))
    priced = GeminiAdapter(env(GEMINI_MODEL="gemini-9-ultra"))
    unpriced = GeminiAdapter(env(GEMINI_MODEL="gemini-unknown"))
    for adapter in (priced, unpriced):
        await adapter.load()
    fake.script(FakeGemini.reply(REPLY, prompt_tokens=1000, output_tokens=100),
                FakeGemini.reply(REPLY, prompt_tokens=1000, output_tokens=100))
    assert (await priced.generate("card?")).cost_usd == pytest.approx((1000 * 2.0 + 100 * 20.0) / 1e6)
    assert (await unpriced.generate("card?")).cost_usd is None
    for adapter in (priced, unpriced):
        await adapter.aclose()


async def test_a_429_is_retried_and_the_second_attempt_answers(fake, gemini):
    fake.script(FakeGemini.status(429, "Resource has been exhausted"), FakeGemini.reply(REPLY))
    result = await gemini.generate("Where is my card?")
    assert result.intent == "card_arrival"
    assert len(fake.requests) == 2
    assert fake.requests[0].body == fake.requests[1].body


async def test_a_500_every_time_errors_after_all_attempts(fake, gemini):
    fake.default = FakeGemini.status(500, "internal error")
    with pytest.raises(ModelResponseError, match="HTTP 500"):
        await gemini.generate("Where is my card?")
    assert len(fake.requests) == LLMSettings().gemini_retry_attempts
    assert gemini.get_metrics()["error_kinds"] == {"ModelResponseError": 1}


async def test_a_400_is_not_retried(fake, gemini):
    fake.script(FakeGemini.status(400, "Invalid JSON payload received"))
    with pytest.raises(ModelResponseError, match="HTTP 400"):
        await gemini.generate("Where is my card?")
    assert len(fake.requests) == 1


async def test_a_slow_server_times_out_within_the_configured_deadline(fake, env):
    adapter = GeminiAdapter(env(GEMINI_TIMEOUT_S="0.3"))
    await adapter.load()
    fake.default = FakeGemini.delay(600, FakeGemini.reply(REPLY))  # a server that hangs: only a deadline ends it
    with pytest.raises(ModelTimeoutError, match="within 0.3s"):
        await asyncio.wait_for(adapter.generate("Where is my card?"), 60)  # 60 s: a guard, not the assertion
    await adapter.aclose()


@pytest.mark.parametrize("reply", [
    "Sure! Your card is on its way.",  # prose, not JSON
    '{"intent": "card_arrival", "confidence": 0.9, "answer": "cut of',  # truncated JSON
    '["card_arrival"]',  # JSON, but not an object
    '{"intent": "not_a_label", "confidence": 0.9, "answer": "x"}',  # outside the enum
    '{"intent": "card_arrival", "confidence": "high", "answer": "x"}',  # confidence not a number
    '{"intent": "card_arrival", "confidence": 0.9, "answer": ""}',  # no answer
])
async def test_a_malformed_reply_is_a_model_response_error(fake, gemini, reply):
    fake.script(FakeGemini.reply(reply))
    with pytest.raises(ModelResponseError):
        await gemini.generate("Where is my card?")
    assert gemini.get_metrics()["errors"] == 1


async def test_a_response_body_that_is_not_json_is_a_model_response_error(fake, gemini):
    fake.script(FakeGemini.text("<html>proxy error</html>"))
    with pytest.raises(ModelResponseError):
        await gemini.generate("Where is my card?")


async def test_a_blocked_prompt_is_a_model_response_error(fake, gemini):
    fake.script(FakeGemini.text(json.dumps({"promptFeedback": {"blockReason": "SAFETY"}})))
    with pytest.raises(ModelResponseError, match="SAFETY"):
        await gemini.generate("Where is my card?")


async def test_without_an_api_key_the_model_is_unavailable_and_nothing_is_sent(fake, monkeypatch):
    monkeypatch.setenv("GEMINI_BASE_URL", fake.url)
    adapter = GeminiAdapter(LLMSettings())
    with pytest.raises(ModelUnavailableError, match="no API key"):
        await adapter.load()
    assert await adapter.health_check() == HealthStatus(False, NO_API_KEY)
    with pytest.raises(ModelUnavailableError):
        await adapter.generate("Where is my card?")
    assert fake.requests == []


async def test_health_check_with_a_key_runs_one_real_inference(fake, env):
    adapter = GeminiAdapter(env())
    fake.script(FakeGemini.reply(REPLY))
    status = await adapter.health_check()
    assert status.healthy and status.latency_ms is not None
    assert len(fake.requests) == 1
    fake.default = FakeGemini.status(503)
    status = await adapter.health_check()
    assert not status.healthy and "HTTP 503" in status.reason
    await adapter.aclose()


async def test_personal_data_never_reaches_the_server(fake, gemini):
    card, iban, email = "4111 1111 1111 1111", "GB82 WEST 1234 5698 7654 32", "jane.doe@example.com"
    fake.script(FakeGemini.reply(REPLY))
    result = await gemini.generate(f"My card {card} was charged twice, refund to {iban} and email {email}")
    raw = fake.requests[0].body
    for secret in (card, card.replace(" ", ""), iban, iban.replace(" ", ""), email, "4111", "5698", "jane"):
        assert secret.encode() not in raw
    sent = fake.requests[0].json["contents"][0]["parts"][0]["text"]
    assert sent == "My card [CARD] was charged twice, refund to [IBAN] and email [EMAIL]"
    assert result.extra["redactions"] == {"CARD": 1, "IBAN": 1, "EMAIL": 1}


async def test_api_version_is_configurable(fake, env):
    adapter = GeminiAdapter(env(GEMINI_API_VERSION="v1"))
    await adapter.load()
    fake.script(FakeGemini.reply(REPLY))
    await adapter.generate("Where is my card?")
    assert fake.requests[0].version == "v1"
    await adapter.aclose()


async def test_an_explicit_version_string_is_kept(env):
    adapter = GeminiAdapter(env(GEMINI_MODEL="gemini-2.5-pro"), "gemini_2.5_pro_v2.0.0")
    assert (adapter.version, adapter.model_id) == ("gemini_2.5_pro_v2.0.0", "gemini-2.5-pro")
