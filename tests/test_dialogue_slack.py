"""The dialogue in Slack over signed HTTP and the fake Web API: clarifying questions, hand-off to a person,
silence while a person has the case, the support text without a destination, repeated failures."""

from __future__ import annotations

from llm.knowledge_base import load_knowledge_base
from storage.models import Clarification, DialogueTurn, HandoffCase
from tests.dialogue_helpers import buttons_of, click, rows
from tests.fake_slack import BOT_USER_ID
from tests.scripted import Scripted, ScriptedAdapter
from tests.slack_helpers import mention, message, slack_harness

KB = load_knowledge_base()
CLOSE = {"top_intents": [["card_arrival", 0.41], ["card_delivery_estimate", 0.33]]}


def posts_in(h, channel: str) -> list[dict]:
    return [p for p in h.fake.posts() if p["channel"] == channel]


async def test_a_close_pair_of_intents_gets_buttons_and_the_click_answers_that_intent_and_stores_the_label():
    custom = ScriptedAdapter("custom", default=Scripted("Your card is on its way.", "card_arrival", 0.41, extra=CLOSE))
    async with slack_harness(custom=custom) as h:
        await h.post_event(message("my card 4111 1111 1111 1111 where is it", channel="D0100"))
        [asked] = await h.fake.wait_for(lambda f: f.posts())
        assert asked["text"].startswith("I want to get this right. Do you mean:")
        choose_a, choose_b, other = buttons_of(asked)
        assert [b["text"]["text"] for b in (choose_a, choose_b, other)] == [
            KB.title("card_arrival"), KB.title("card_delivery_estimate"), "Something else"]
        assert "Your card is on its way." not in asked["text"]  # it asks instead of guessing

        response = await click(h, asked, choose_b)
        assert response.status == 200
        answer = (await h.fake.wait_for(lambda f: len(f.posts()) >= 2 and f.posts()))[1]
        assert answer["text"] == KB.answer("card_delivery_estimate")
        assert answer["channel"] == "D0100"
        [label] = await rows(h, Clarification)
        assert label["chosen"] == "card_delivery_estimate"
        assert label["offered"] == "card_arrival,card_delivery_estimate" and label["model"] == "custom"
        assert "4111" not in label["question"] and "[CARD]" in label["question"]


async def test_clear_or_distant_readings_are_answered_without_asking():
    far = {"top_intents": [["card_arrival", 0.45], ["card_delivery_estimate", 0.20]]}
    clear = {"top_intents": [["card_arrival", 0.55], ["card_delivery_estimate", 0.45]]}
    custom = ScriptedAdapter("custom").enqueue(Scripted("A.", "card_arrival", 0.45, extra=far),
                                               Scripted("B.", "card_arrival", 0.55, extra=clear),
                                               Scripted("C.", "card_arrival", 0.3))  # no top_intents: never asks
    async with slack_harness(custom=custom) as h:
        for n in range(3):
            await h.post_event(message(f"question {n}", channel=f"D02{n}"))
        posts = await h.fake.wait_for(lambda f: len(f.posts()) == 3 and f.posts())
        assert sorted(p["text"] for p in posts) == ["A.", "B.", "C."]
        assert all(not buttons_of(p) for p in posts)


async def test_something_else_offers_a_person():
    custom = ScriptedAdapter("custom", default=Scripted("Your card is on its way.", "card_arrival", 0.41, extra=CLOSE))
    async with slack_harness(custom=custom, handoff_channel="CHAND") as h:
        await h.post_event(message("where is it", channel="D0101"))
        [asked] = await h.fake.wait_for(lambda f: f.posts())
        await click(h, asked, buttons_of(asked)[2])
        offer = (await h.fake.wait_for(lambda f: len(f.posts()) >= 2 and f.posts()))[1]
        assert "person" in offer["text"]
        [person] = buttons_of(offer)
        assert person["text"]["text"] == "Talk to a person"
        await click(h, offer, person)
        case = await h.fake.wait_for(lambda f: posts_in(h, "CHAND"))
        assert "none of the bot's readings fitted" in case[0]["text"]
        [label] = await rows(h, Clarification)
        assert label["chosen"] == "something_else"


async def test_talk_to_a_human_posts_a_case_and_tells_the_customer():
    async with slack_harness(handoff_channel="CHAND", handoff_expected_minutes=20) as h:
        event = mention(f"<@{BOT_USER_ID}> I want to talk to a human, my IBAN is GB82WEST12345698765432",
                        channel="C0300")
        await h.post_event(event)
        await h.fake.wait_for(lambda f: len(f.posts()) >= 2)
        [case] = posts_in(h, "CHAND")
        [told] = posts_in(h, "C0300")
        assert told["thread_ts"] == event["ts"]
        assert "A person will reply in this conversation" in told["text"] and "20 minutes" in told["text"]
        text = case["blocks"][0]["text"]["text"]
        assert "the customer asked for a person" in text and "GB82" not in text and "[IBAN]" in text
        assert f"https://slack.com/archives/C0300/p{event['ts'].replace('.', '')}" in text
        assert [b["text"]["text"] for b in buttons_of(case)] == ["Take it", "Resolved"]
        assert h.custom.prompts == []  # no model guessed at it
        [stored] = await rows(h, HandoffCase)
        case_ts = h.fake.messages["CHAND"][0]["ts"]
        assert (stored["reason"], stored["status"], stored["post_ref"]) == ("asked", "open", f"CHAND:{case_ts}")


async def test_take_it_silences_the_bot_in_that_thread_and_resolved_lifts_the_silence():
    async with slack_harness(handoff_channel="CHAND") as h:
        await h.post_event(message("Can I speak to an agent please", channel="D0400"))
        [case] = await h.fake.wait_for(lambda f: posts_in(h, "CHAND"))
        take, resolve = buttons_of(case)
        await click(h, case, take, user="UAGENT")
        [update] = await h.fake.wait_for(lambda f: f.calls_to("chat.update"))
        assert update["blocks"][1]["elements"][0]["text"] == "Taken by <@UAGENT>"
        assert [b["text"]["text"] for b in buttons_of(update)] == ["Resolved"]

        await h.post_event(message("hello? where is my card", channel="D0400"))
        await h.post_event(message("where is my card", channel="D0401"))  # another conversation: answered
        await h.fake.wait_for(lambda f: posts_in(h, "D0401"))
        await h.settled()
        assert len(posts_in(h, "D0400")) == 1  # only "a person will reply"
        assert h.custom.prompts == ["where is my card"]

        await click(h, case, resolve, user="UAGENT")
        await h.fake.wait_for(lambda f: len(f.calls_to("chat.update")) == 2)
        await h.post_event(message("and now?", channel="D0400"))
        await h.fake.wait_for(lambda f: len(posts_in(h, "D0400")) == 2)
        [stored] = await rows(h, HandoffCase)
        assert (stored["status"], stored["taken_by"], stored["resolved_by"]) == ("resolved", "UAGENT", "UAGENT")
        assert stored["opened_at"] <= stored["taken_at"] <= stored["resolved_at"]


async def test_an_urgent_intent_is_answered_at_once_with_a_talk_to_a_person_button():
    custom = ScriptedAdapter("custom", default=Scripted(KB.answer("lost_or_stolen_card"), "lost_or_stolen_card", 0.28))
    async with slack_harness(custom=custom, handoff_channel="CHAND") as h:
        await h.post_event(message("Someone nicked my wallet with my card in it", channel="D0500"))
        [answer] = await h.fake.wait_for(lambda f: f.posts())
        assert answer["text"] == KB.answer("lost_or_stolen_card")
        [person] = buttons_of(answer)
        assert person["text"]["text"] == "Talk to a person" and person["style"] == "primary"
        await click(h, answer, person)
        [case] = await h.fake.wait_for(lambda f: posts_in(h, "CHAND"))
        assert "urgent matter" in case["text"] and "lost_or_stolen_card" in case["blocks"][0]["text"]["text"]


async def test_two_low_confidence_turns_in_a_row_offer_a_person():
    oos = Scripted(KB.out_of_scope_answer, "out_of_scope", 0.1)
    custom = ScriptedAdapter("custom").enqueue(oos, Scripted("Your card is on its way.", "card_arrival", 0.9), oos, oos)
    async with slack_harness(custom=custom) as h:
        for n, text in enumerate(["blah", "where is my card", "hmm", "what?"]):
            await h.post_event(message(text, channel="D0600"))
            await h.fake.wait_for(lambda f, n=n: len(f.posts()) == n + 1)
        first, second, third, fourth = h.fake.posts()
        assert not buttons_of(first) and not buttons_of(second) and not buttons_of(third)
        [person] = buttons_of(fourth)
        assert person["text"]["text"] == "Talk to a person"
        assert "Would you like a person" in fourth["text"]
        assert [t["low"] for t in await rows(h, DialogueTurn)] == [True, False, True, True]


async def test_with_no_destination_the_customer_gets_the_support_text():
    async with slack_harness() as h:
        await h.post_event(message("I want to complain", channel="D0700"))
        [post] = await h.fake.wait_for(lambda f: f.posts())
        assert KB.support_contact and KB.support_contact in post["text"]
        [stored] = await rows(h, HandoffCase)
        assert stored["status"] == "undelivered"
