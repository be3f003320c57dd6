"""Gemini's grounded answers and streaming, through the real google-genai SDK against the fake server's
generateContent and streamGenerateContent (SSE)."""

from __future__ import annotations

import asyncio
import json

import pytest

from llm.adapters.gemini import GeminiAdapter
from llm.config import LLMSettings
from llm.context import Turn, with_history
from llm.knowledge_base import load_knowledge_base
from tests.fake_gemini import FakeGemini
from tests.stream_helpers import collect

KB = load_knowledge_base()
LOST = KB.answer("lost_or_stolen_card")
QUESTION = "I lost my card 4111 1111 1111 1111 in Lisbon yesterday and I fly home tomorrow, what do I do?"
FAITHFUL = ("Sorry to hear that. Open the app, tap Cards, select the card and freeze it right away so nobody can "
            "use it. If you're sure it's gone, report it as lost or stolen there and order a replacement.")
INVENTED_FEE = "Open the app, tap Cards and freeze it. A replacement costs £5 and arrives in 3 days."


def reply(answer: str, intent: str = "lost_or_stolen_card") -> dict:
    return {"intent": intent, "confidence": 0.91, "answer": answer}


@pytest.fixture
async def fake():
    server = await FakeGemini().start()
    yield server
    await server.stop()


@pytest.fixture
async def gemini(fake):
    adapter = GeminiAdapter(LLMSettings(gemini_api_key="k", gemini_base_url=fake.url, gemini_retry_attempts=1))
    await adapter.load()
    yield adapter
    await adapter.aclose()


async def test_a_faithful_paraphrase_is_shown_in_gemini_s_own_words(fake, gemini):
    fake.script(FakeGemini.reply(reply(FAITHFUL)))
    result = await gemini.generate(QUESTION)
    assert result.text == FAITHFUL and result.extra["answer_source"] == "model"
    assert result.extra["grounded_on"] == "lost_or_stolen_card"
    assert "4111" not in fake.requests[0].body.decode()


async def test_an_invented_fee_shows_the_entry_and_is_counted(fake, gemini):
    fake.script(FakeGemini.reply(reply(INVENTED_FEE)))
    result = await gemini.generate(QUESTION)
    assert result.text == LOST and result.extra["grounding"] == "rejected"
    assert "invented number" in result.extra["grounding_reason"]
    assert gemini.get_metrics()["grounding_rejections"] == 1


async def test_knowledge_base_style_shows_the_entry(fake):
    adapter = GeminiAdapter(LLMSettings(gemini_api_key="k", gemini_base_url=fake.url, answer_style="knowledge_base"))
    fake.script(FakeGemini.reply(reply(FAITHFUL)), FakeGemini.stream(reply(FAITHFUL)))
    try:
        assert (await adapter.generate(QUESTION)).text == LOST
        deltas, result = await collect(adapter, QUESTION)
        assert deltas == [LOST] and result.text == LOST and result.extra["grounding"] == "off"
    finally:
        await adapter.aclose()


async def test_the_stream_sends_checked_sentences_before_gemini_has_finished(fake, gemini):
    hold = asyncio.Event()
    fake.script(FakeGemini.stream(reply(FAITHFUL), pieces=12, hold=hold, hold_after=7))
    stream = gemini.stream(QUESTION)
    first = await anext(stream)
    assert first == "Sorry to hear that. " and not fake.finished.is_set()  # Gemini is still writing
    hold.set()
    rest = [item async for item in stream]
    result = rest[-1]
    assert first + "".join(rest[:-1]) == result.text == FAITHFUL
    assert result.intent == "lost_or_stolen_card" and result.confidence == 0.91
    assert result.prompt_tokens == 1200 and result.extra["ttft_ms"] <= result.latency_ms
    assert fake.requests[0].model == "gemini-2.0-flash" and "streamGenerateContent" not in fake.requests[0].model


async def test_a_streamed_sentence_that_fails_stops_the_model_s_words_and_sends_the_entry(fake, gemini):
    fake.script(FakeGemini.stream(reply(INVENTED_FEE), pieces=20))
    deltas, result = await collect(gemini, QUESTION)
    assert deltas == ["Open the app, tap Cards and freeze it. ", "\n\n" + LOST]
    assert result.text == "".join(deltas) and result.extra["grounding"] == "rejected"


async def test_escapes_in_the_streamed_json_are_decoded(fake, gemini):
    answer = 'Open the app, tap "Cards" and freeze it.\nThen order a replacement \u2014 it\'s quick.'
    fake.script(FakeGemini.stream(json.dumps(reply(answer)), pieces=40))
    deltas, result = await collect(gemini, "lost my card")
    assert "".join(deltas) == result.text == answer


async def test_earlier_turns_reach_gemini_redacted(fake, gemini):
    fake.script(FakeGemini.reply(reply(FAITHFUL)))
    turns = [Turn("I lost my card, mail me at ana@example.com", "Freeze it under Cards.", "lost_or_stolen_card")]
    with with_history(turns):
        await gemini.generate("and how long will the new one take?")
    sent = fake.requests[0].json["contents"][0]["parts"][0]["text"]
    assert "Customer: I lost my card" in sent and "Freeze it under Cards." in sent
    assert "ana@example.com" not in sent and sent.endswith("and how long will the new one take?")
