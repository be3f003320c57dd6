"""Feedback in Slack over signed HTTP: once per user and answer, a second click changes it, the thumbs-down reason
modal, two thumbs-downs in a row offer a person; and the labelled-example export."""

from __future__ import annotations

import csv
import io
import json

from bot.labels import export_labels, parse_since
from storage.models import Feedback
from tests.dialogue_helpers import buttons_of, click, feedback_of, rows, submit_reason
from tests.scripted import Scripted, ScriptedAdapter
from tests.slack_helpers import message, slack_harness

CLOSE = {"top_intents": [["card_arrival", 0.41], ["card_delivery_estimate", 0.33]]}


async def test_feedback_is_stored_once_per_user_and_answer_and_a_second_click_changes_it():
    async with slack_harness() as h:
        await h.post_event(message("Where is my card?", channel="D0800"))
        [answer] = await h.fake.wait_for(lambda f: f.posts())
        control = feedback_of(answer)
        assert control["type"] == "feedback_buttons"
        up, down = control["positive_button"]["value"], control["negative_button"]["value"]
        await click(h, answer, control, value=up)
        await h.settled()
        await click(h, answer, control, value=up)
        await h.settled()
        [row] = await rows(h, Feedback)
        assert row["positive"] is True
        assert (row["model"], row["intent"], row["confidence"]) == ("custom", "card_arrival", 0.93)
        assert row["request_id"] == up.removeprefix("up:")

        await click(h, answer, control, value=down)
        await h.fake.wait_for(lambda f: f.calls_to("views.open"))
        await click(h, answer, control, value=up, user="U0002")
        await h.settled()
        first, second = await rows(h, Feedback)
        assert first["positive"] is False and second["positive"] is True
        assert first["user_hash"] != second["user_hash"] and "U0001" not in first["user_hash"]


async def test_the_thumbs_down_reason_is_stored():
    async with slack_harness() as h:
        await h.post_event(message("Where is my card?", channel="D0801"))
        [answer] = await h.fake.wait_for(lambda f: f.posts())
        control = feedback_of(answer)
        await click(h, answer, control, value=control["negative_button"]["value"])
        [opened] = await h.fake.wait_for(lambda f: f.calls_to("views.open"))
        view = json.loads(opened["view"]) if isinstance(opened["view"], str) else opened["view"]
        assert [o["value"] for o in view["blocks"][0]["element"]["options"]] == [
            "wrong_topic", "not_helpful", "wanted_person"]
        response = await submit_reason(h, view, "wrong_topic")
        assert response.status == 200
        await h.settled()
        [row] = await rows(h, Feedback)
        assert (row["positive"], row["reason"]) == (False, "wrong_topic")


async def test_two_thumbs_down_in_a_row_offer_a_person():
    async with slack_harness() as h:
        for n in range(2):
            await h.post_event(message(f"Where is my card? {n}", channel="D0802"))
            await h.fake.wait_for(lambda f, n=n: len(f.posts()) == n + 1)
        first, second = h.fake.posts()
        for answer in (first, second):
            control = feedback_of(answer)
            await click(h, answer, control, value=control["negative_button"]["value"])
            await h.settled()
        offer = await h.fake.wait_for(lambda f: len(f.posts()) == 3 and f.posts()[2])
        assert [b["text"]["text"] for b in buttons_of(offer)] == ["Talk to a person"]


async def test_the_export_is_text_category_with_no_personal_data(tmp_path):
    custom = ScriptedAdapter("custom", default=Scripted("Your card is on its way.", "card_arrival", 0.41, extra=CLOSE))
    async with slack_harness(custom=custom) as h:
        questions = ["card 4111 1111 1111 1111 not here, mail me at jo@example.com", "where, call +44 7700 900123"]
        for n, text in enumerate(questions):
            await h.post_event(message(text, channel=f"D09{n}"))
            await h.fake.wait_for(lambda f, n=n: len(f.posts()) == n + 1)
        for n, asked in enumerate(list(h.fake.posts())):
            await click(h, asked, buttons_of(asked)[n])  # the first picks card_arrival, the second the other
            await h.fake.wait_for(lambda f, n=n: len(f.posts()) == 3 + n)
        out = tmp_path / "labels.csv"
        assert await export_labels(h.runtime.db, parse_since("30d"), out) == 2
        text = out.read_text()
        got = list(csv.DictReader(io.StringIO(text)))
        assert text.splitlines()[0] == "text,category"
        assert [r["category"] for r in got] == ["card_arrival", "card_delivery_estimate"]
        for secret in ("4111", "jo@example.com", "7700"):
            assert secret not in text
        assert "[CARD]" in got[0]["text"] and "[EMAIL]" in got[0]["text"]
