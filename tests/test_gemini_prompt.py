"""The system instruction, reply schema and parser of the Gemini adapter, and the price table."""

from __future__ import annotations

import json

import pytest

from llm.adapters.base import OUT_OF_SCOPE
from llm.adapters.gemini import version_for
from llm.errors import ModelResponseError
from llm.gemini_prompt import estimated_tokens, parse_reply, response_schema, system_instruction
from llm.knowledge_base import load_knowledge_base
from llm.pricing import GEMINI_PRICES, Price, parse_price_table, price_for, price_table


def test_system_instruction_lists_every_intent_with_its_answer_and_the_out_of_scope_reply():
    kb = load_knowledge_base()
    text = system_instruction(kb)
    for intent in kb.intents:
        assert f"\n- {intent}: {kb.answer(intent)}\n" in text
    assert text.endswith(f"- {OUT_OF_SCOPE}: {kb.out_of_scope_answer}")
    assert "[CARD]" in text and "[IBAN]" in text  # the model is told what placeholders mean


def test_schema_restricts_the_intent_to_the_labels_plus_out_of_scope():
    kb = load_knowledge_base()
    schema = response_schema(kb).model_dump(exclude_none=True)
    assert schema["properties"]["intent"]["enum"] == [*kb.intents, OUT_OF_SCOPE]
    assert len(schema["properties"]["intent"]["enum"]) == 78
    assert schema["property_ordering"][0] == "intent"


def test_parse_reply_accepts_a_valid_reply_and_clamps_confidence():
    reply = parse_reply(json.dumps({"intent": "card_arrival", "confidence": 1.2, "answer": " ok "}), {"card_arrival"})
    assert (reply.intent, reply.confidence, reply.answer) == ("card_arrival", 1.0, "ok")
    reply = parse_reply('{"intent": "out_of_scope", "confidence": 0, "answer": "hi"}', {"card_arrival"})
    assert (reply.intent, reply.confidence) == (OUT_OF_SCOPE, 0.0)


@pytest.mark.parametrize("text", ["", "   ", "null", "{}", '{"intent": "card_arrival"}',
                                  '{"intent": "card_arrival", "confidence": true, "answer": "x"}',
                                  '{"intent": "card_arrival", "confidence": NaN, "answer": "x"}'])
def test_parse_reply_rejects_unusable_replies(text):
    with pytest.raises(ModelResponseError):
        parse_reply(text, {"card_arrival"})


def test_prices_for_pinned_and_unknown_models():
    assert price_for("gemini-2.0-flash-001", GEMINI_PRICES) == GEMINI_PRICES["gemini-2.0-flash"]
    assert price_for("models/gemini-2.5-flash", GEMINI_PRICES) == GEMINI_PRICES["gemini-2.5-flash"]
    assert price_for("gemini-2.5-flash-lite-preview-06-17", GEMINI_PRICES) == GEMINI_PRICES["gemini-2.5-flash-lite"]
    assert price_for("gpt-4o", GEMINI_PRICES) is None
    assert Price(0.10, 0.40).cost(1_000_000, 1_000_000) == pytest.approx(0.50)


def test_price_table_override_replaces_and_adds_models():
    table = price_table('{"gemini-2.0-flash": [1, 2], "gemini-x": {"input": 3, "output": 4}}')
    assert table["gemini-2.0-flash"] == Price(1.0, 2.0)
    assert table["gemini-x"] == Price(3.0, 4.0)
    assert table["gemini-2.5-pro"] == GEMINI_PRICES["gemini-2.5-pro"]


@pytest.mark.parametrize("raw", ["not json", "[1, 2]", '{"m": [1]}', '{"m": [-1, 2]}', '{"m": ["a", "b"]}',
                                 '{"m": {"input": 1}}'])
def test_a_bad_price_table_is_refused_with_a_reason(raw):
    with pytest.raises(ValueError, match="price"):
        parse_price_table(raw)


def test_version_strings_follow_the_model_id():
    assert version_for("gemini-2.0-flash") == "gemini_2.0_flash_v1.0.0"
    assert version_for("gemini-2.5-flash-lite") == "gemini_2.5_flash_lite_v1.0.0"


def test_the_system_instruction_is_a_few_thousand_tokens():
    tokens = estimated_tokens(system_instruction(load_knowledge_base()))
    assert 3000 < tokens < 12000  # the figure the README's cost estimate rests on
