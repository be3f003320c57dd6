"""The custom model streams its answer's tokens, and the pieces joined are exactly the text it returns; a short
follow-up it cannot place is answered within the conversation's intent of a moment ago, and says so."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from llm.adapters.base import OUT_OF_SCOPE
from llm.context import Turn, with_history
from tests.stream_helpers import collect
from tests.test_custom_answer_cache import random_predictor, write_checkpoint


async def test_custom_streams_the_same_text_that_it_returns(tmp_path):
    adapter = write_checkpoint(tmp_path, random_predictor())
    try:
        for prompt in ("Someone stole my card!", "What is the exchange rate for euros?"):
            deltas, result = await collect(adapter, prompt)
            generated = await adapter.generate(prompt)
            assert len(deltas) > 5  # token by token, not one block
            assert "".join(deltas) == result.text == generated.text
            assert result.intent == generated.intent and result.extra["ttft_ms"] <= result.latency_ms + 1000
    finally:
        await adapter.aclose()


async def test_a_short_follow_up_below_the_threshold_takes_the_recent_intent(tmp_path):
    adapter = write_checkpoint(tmp_path, random_predictor(threshold=1.01))  # nothing is ever placed alone
    now = datetime.now(UTC)
    try:
        alone = await adapter.generate("and the new one?")
        assert alone.intent == OUT_OF_SCOPE and "context_intent" not in alone.extra
        with with_history([Turn("Someone stole my card", "Freeze it...", "lost_or_stolen_card", now)]):
            follow = await adapter.generate("and the new one?")
            long = await adapter.generate("why was I charged a fee for my cash withdrawal at the airport today")
        assert follow.intent == "lost_or_stolen_card" and follow.extra["context_intent"] == "lost_or_stolen_card"
        assert long.intent == OUT_OF_SCOPE  # not a short follow-up
        with with_history([Turn("Someone stole my card", "...", "lost_or_stolen_card", now - timedelta(hours=1))]):
            stale = await adapter.generate("and the new one?")
        assert stale.intent == OUT_OF_SCOPE  # not "a moment ago"
    finally:
        await adapter.aclose()
