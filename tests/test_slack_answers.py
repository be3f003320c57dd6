"""What users see: help, oversized messages, apologies with a reference id, split and streamed long answers."""

from __future__ import annotations

import logging
import re

from bot.slack.format import SECTION_LIMIT, split_text, strip_mention
from tests.fake_slack import BOT_USER_ID
from tests.scripted import Scripted, ScriptedAdapter
from tests.slack_helpers import mention, message, slack_harness

LONG_ANSWER = " ".join(f"Sentence {i} explains one more detail of how card payments are disputed." for i in range(120))


async def test_an_empty_mention_gets_a_short_help_message():
    async with slack_harness() as h:
        await h.post_event(mention(f"<@{BOT_USER_ID}>   "))
        [post] = await h.fake.wait_for(lambda f: f.posts())
        assert "Ask me a banking question" in post["text"]
        assert h.custom.prompts == []


async def test_a_message_over_the_limit_gets_an_explanation_and_reaches_no_model():
    async with slack_harness() as h:
        await h.post_event(message("x" * 4001))
        [post] = await h.fake.wait_for(lambda f: f.posts())
        assert "4,001 characters" in post["text"] and "at most 4,000" in post["text"]
        assert h.custom.prompts == []


async def test_when_every_model_fails_the_user_gets_an_apology_with_a_logged_reference(caplog):
    caplog.set_level(logging.ERROR, logger="bot.conversation")
    custom = ScriptedAdapter("custom").enqueue(Scripted(error=RuntimeError("checkpoint corrupted")))
    gemini = ScriptedAdapter("gemini").enqueue(Scripted(error=RuntimeError("quota exceeded")))
    async with slack_harness(custom=custom, gemini=gemini) as h:
        await h.post_event(mention(f"<@{BOT_USER_ID}> Where is my card?"))
        [post] = await h.fake.wait_for(lambda f: f.posts())
        reference = re.search(r"`([0-9a-f]{12})`", post["text"]).group(1)
        assert post["text"].startswith("Sorry")
        assert "Traceback" not in post["text"] and "quota" not in post["text"]
        logged = [r.getMessage() for r in caplog.records if reference in r.getMessage()]
        assert logged and "quota exceeded" in logged[0]


async def test_a_fallback_shows_in_the_footer():
    custom = ScriptedAdapter("custom").enqueue(Scripted(error=RuntimeError("down")))
    async with slack_harness(custom=custom) as h:
        await h.post_event(message("Where is my card?"))
        [post] = await h.fake.wait_for(lambda f: f.posts())
        assert post["text"] == "Gemini says hello."
        assert "fell back from custom" in post["blocks"][-1]["elements"][0]["text"]


async def test_show_model_footer_off_leaves_only_the_answer():
    async with slack_harness(show_model_footer=False) as h:
        await h.post_event(message("Where is my card?"))
        [post] = await h.fake.wait_for(lambda f: f.posts())
        assert [b["type"] for b in post["blocks"]] == ["section", "context_actions"]  # the answer, its feedback


async def test_a_long_answer_is_streamed_where_slack_allows_it():
    custom = ScriptedAdapter("custom", default=Scripted(LONG_ANSWER, "card_payment_disputed", 0.7))
    async with slack_harness(custom=custom) as h:
        event = mention(f"<@{BOT_USER_ID}> How do disputes work?", channel="C0042")
        await h.post_event(event)
        [stop] = await h.fake.wait_for(lambda f: f.calls_to("chat.stopStream"))
        [start] = h.fake.calls_to("chat.startStream")
        assert (start["channel"], start["thread_ts"], start["recipient_user_id"]) == ("C0042", event["ts"], "U0001")
        chunks = [c for call in (start, *h.fake.calls_to("chat.appendStream"), stop) for c in call.get("chunks", [])]
        assert "".join(c["text"] for c in chunks) == LONG_ANSWER
        assert len(h.fake.calls_to("chat.appendStream")) >= 5  # it arrives in pieces
        assert [b["type"] for b in stop["blocks"]] == ["context_actions", "context"]  # feedback, then the footer
        assert h.fake.posts() == []


async def test_where_streaming_is_refused_a_long_answer_is_split_never_cut():
    answer = LONG_ANSWER + " " + "&<tag>" + " end."
    custom = ScriptedAdapter("custom", default=Scripted(answer, "card_payment_disputed", 0.7))
    async with slack_harness(custom=custom) as h:
        h.fake.errors["chat.startStream"] = "not_allowed"
        event = mention(f"<@{BOT_USER_ID}> How do disputes work?", channel="C0042")
        await h.post_event(event)
        posts = await h.fake.wait_for(lambda f: len(f.posts()) >= 3 and f.posts())
        assert all(p["thread_ts"] == event["ts"] and len(p["text"]) <= SECTION_LIMIT for p in posts)
        joined = " ".join(p["text"] for p in posts)
        assert joined == answer.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        assert [b["type"] for b in posts[-1]["blocks"]] == ["section", "context_actions", "context"]
        assert all(len(p["blocks"]) == 1 for p in posts[:-1])


def test_split_text_prefers_paragraphs_then_sentences_then_words():
    text = "a" * 10 + "\n\n" + "b" * 10 + ". " + "c" * 5 + " " + "d" * 5
    assert split_text(text, 15) == ["a" * 10, "b" * 10 + ".", "c" * 5 + " " + "d" * 5]
    assert split_text("x" * 25, 10) == ["x" * 10, "x" * 10, "x" * 5]  # one endless word: split, not dropped
    assert split_text("short", 10) == ["short"]


def test_strip_mention_removes_only_the_bots_mention():
    assert strip_mention(f"<@{BOT_USER_ID}> ask <@U0002|ann> about   it", BOT_USER_ID) == "ask <@U0002|ann> about it"


async def test_a_user_over_the_rate_limit_gets_a_friendly_wait_message_and_reaches_no_model():
    async with slack_harness(rate_limit_user_per_min=2) as h:
        for i in range(3):
            await h.post_event(message(f"Where is my card? ({i})", ts=f"1700000000.00000{i}"))
            await h.fake.wait_for(lambda f, n=i + 1: len(f.posts()) >= n and f.posts())
        posts = h.fake.posts()
        assert [p["text"] for p in posts[:2]] == ["Your card is on its way."] * 2
        assert "faster than I can answer" in posts[2]["text"] and "please wait" in posts[2]["text"]
        assert len(h.custom.prompts) == 2


async def test_an_answer_rate_limited_by_slack_is_retried_not_lost():
    async with slack_harness() as h:
        h.fake.rate_limited["chat.postMessage"] = 1
        await h.post_event(message("Where is my card?"))
        [post] = await h.fake.wait_for(lambda f: f.posts())
        assert post["text"] == "Your card is on its way."
        assert len(h.fake.calls_to("chat.postMessage:429")) == 1
