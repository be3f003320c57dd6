"""Gemini's runner-up intent: an optional field of the reply schema, parsed leniently, offered as
extra["top_intents"] (what a clarifying question offers), through the real SDK and the fake Gemini server."""

from __future__ import annotations

import json

import pytest

from bot.conversation.clarify import close_pair
from llm.adapters.gemini import GeminiAdapter
from llm.config import LLMSettings
from llm.gemini_prompt import parse_reply, response_schema
from llm.knowledge_base import load_knowledge_base
from tests.fake_gemini import FakeGemini

KB = load_knowledge_base()
REPLY = {"intent": "card_arrival", "confidence": 0.45, "answer": "Your card should arrive soon; track it in the app."}


def test_the_schema_offers_the_runner_up_as_optional_fields_after_the_answer():
    schema = response_schema(KB).model_dump(exclude_none=True)
    assert schema["required"] == ["intent", "confidence", "answer"]
    assert schema["property_ordering"][:3] == ["intent", "confidence", "answer"]
    assert schema["properties"]["runner_up_intent"]["enum"] == list(KB.intents)
    assert schema["properties"]["runner_up_confidence"]["maximum"] == 1.0


def test_a_runner_up_is_read_and_anything_unusable_is_left_out_without_rejecting_the_reply():
    def parsed(**fields):
        return parse_reply(json.dumps(REPLY | fields), KB.intents)

    good = parsed(runner_up_intent="card_delivery_estimate", runner_up_confidence=0.35)
    assert good.runner_up == ("card_delivery_estimate", 0.35)
    assert good.top_intents() == {"top_intents": [["card_arrival", 0.45], ["card_delivery_estimate", 0.35]]}
    for fields in ({}, {"runner_up_intent": "card_arrival", "runner_up_confidence": 0.3},  # the same intent
                   {"runner_up_intent": "no_such_intent", "runner_up_confidence": 0.3},
                   {"runner_up_intent": "card_delivery_estimate"}, {"runner_up_confidence": 0.3},
                   {"runner_up_intent": "card_delivery_estimate", "runner_up_confidence": True},
                   {"runner_up_intent": "card_delivery_estimate", "runner_up_confidence": "0.3"},
                   {"runner_up_intent": "card_delivery_estimate", "runner_up_confidence": 0.9}):  # above the intent's
        reply = parsed(**fields)
        assert (reply.intent, reply.runner_up, reply.top_intents()) == ("card_arrival", None, {}), fields
    outside = parse_reply(json.dumps({"intent": "out_of_scope", "confidence": 0.4, "answer": "x",
                                      "runner_up_intent": "card_arrival", "runner_up_confidence": 0.3}), KB.intents)
    assert outside.runner_up is None


@pytest.fixture
async def gemini(monkeypatch):
    fake = await FakeGemini().start()
    monkeypatch.setenv("GEMINI_API_KEY", "test-key")
    monkeypatch.setenv("GEMINI_BASE_URL", fake.url)
    adapter = GeminiAdapter(LLMSettings())
    await adapter.load()
    yield fake, adapter
    await adapter.aclose()
    await fake.stop()


async def test_gemini_s_runner_up_reaches_the_result_and_a_close_pair_clarifies(gemini):
    fake, adapter = gemini
    fake.script(FakeGemini.reply(REPLY | {"runner_up_intent": "card_delivery_estimate", "runner_up_confidence": 0.4}),
                FakeGemini.reply(REPLY))
    close = await adapter.generate("where's my card")
    alone = await adapter.generate("where's my card")
    assert close.extra["top_intents"] == [["card_arrival", 0.45], ["card_delivery_estimate", 0.4]]
    assert close_pair(close, 0.15).intents == ("card_arrival", "card_delivery_estimate")
    assert "top_intents" not in alone.extra and close_pair(alone, 0.15) is None
    config = json.dumps(fake.requests[0].json["generationConfig"])
    assert "runner_up_intent" in config and "runner_up_confidence" in config  # the schema Gemini was given
