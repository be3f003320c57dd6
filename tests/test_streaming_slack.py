"""Slack streams the model's deltas as they arrive: the first words reach Slack's API before the model has finished
(order of events, held by a gate, never the clock); a failure half-way ends the streamed answer with the apology."""

from __future__ import annotations

import asyncio

from llm.streaming import APOLOGY_LINE
from tests.fake_slack import BOT_USER_ID
from tests.slack_helpers import mention, slack_harness
from tests.test_streaming_pipeline import StreamingAdapter

FIRST = "Open the app and tap Cards to freeze your card straight away, so no one can use it. "
REST = "Then report it as lost or stolen and order a replacement in the same place."


def streamed_text(fake) -> str:
    calls = fake.calls_to("chat.startStream") + fake.calls_to("chat.appendStream") + fake.calls_to("chat.stopStream")
    return "".join(chunk["text"] for call in calls for chunk in call.get("chunks", []) if "text" in chunk) + "".join(
        call.get("markdown_text", "") for call in calls)


async def test_the_first_delta_reaches_slack_before_the_model_has_finished():
    gate = asyncio.Event()
    custom = StreamingAdapter("custom", [FIRST, REST], gates={1: gate})
    async with slack_harness(custom=custom, stream_min_chars=20) as h:
        await h.post_event(mention(f"<@{BOT_USER_ID}> I lost my card", channel="C0042"))
        [start] = await h.fake.wait_for(lambda f: f.calls_to("chat.startStream"))
        assert custom.yielded == 1 and not gate.is_set()  # the model is still writing
        assert FIRST in streamed_text(h.fake)
        gate.set()
        [stop] = await h.fake.wait_for(lambda f: f.calls_to("chat.stopStream"))
        assert streamed_text(h.fake) == FIRST + REST
        assert stop["blocks"][-1]["type"] == "context"  # the footer under the streamed answer
        assert h.fake.posts() == [] or all(p.get("text") == "" for p in h.fake.posts())


async def test_a_short_answer_is_posted_as_today():
    custom = StreamingAdapter("custom", ["Freeze it ", "in the app."])
    async with slack_harness(custom=custom) as h:  # STREAM_MIN_CHARS 500
        await h.post_event(mention(f"<@{BOT_USER_ID}> I lost my card"))
        [post] = await h.fake.wait_for(lambda f: f.posts())
        assert post["text"] == "Freeze it in the app." and h.fake.calls_to("chat.startStream") == []


async def test_a_failure_after_the_first_delta_ends_the_stream_with_the_apology():
    custom = StreamingAdapter("custom", [FIRST, REST], fail_at=1)
    async with slack_harness(custom=custom, stream_min_chars=20) as h:
        await h.post_event(mention(f"<@{BOT_USER_ID}> I lost my card"))
        await h.fake.wait_for(lambda f: f.calls_to("chat.stopStream"))
        assert streamed_text(h.fake) == FIRST + APOLOGY_LINE
        assert h.gemini.prompts == []  # no fallback once words were shown
