"""The dialogue in Teams over signed HTTP and the fake Bot Connector: the clarifying card and its click, hand-off
cases posted to TEAMS_HANDOFF_CONVERSATION, "Take it" silencing the bot until "Resolved", feedback once per user
and answer with the reason card."""

from __future__ import annotations

from typing import Any

from bot.teams.format import escape
from llm.knowledge_base import load_knowledge_base
from storage.models import Clarification, Feedback, HandoffCase
from tests.dialogue_helpers import rows
from tests.fake_connector import Posted
from tests.scripted import Scripted, ScriptedAdapter
from tests.teams_helpers import activity, teams_harness, user

KB = load_knowledge_base()
CLOSE = {"top_intents": [["card_arrival", 0.41], ["card_delivery_estimate", 0.33]]}
HANDOFF = "19:handoff@thread.tacv2"


def card_of(posted: Posted) -> dict[str, Any]:
    [attachment] = posted.activity["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    return attachment["content"]


def buttons(posted: Posted) -> list[dict[str, Any]]:
    return card_of(posted)["actions"]


def titles(posted: Posted) -> list[str]:
    return [b["title"] for b in buttons(posted)]


def button(posted: Posted, title: str) -> dict[str, Any]:
    [found] = [b for b in buttons(posted) if b["title"] == title]
    return found


def sent_to(h, conversation: str) -> list[Posted]:
    return [p for p in h.connector.messages() if p.conversation.startswith(conversation)]


async def click(h, posted: Posted, title: str, *, sender: dict | None = None, kind: str = "personal",
                conversation: str | None = None):
    """The message activity Teams sends for an Action.Submit on the bot's `posted` card (in a channel, from the
    card's reply chain)."""
    conversation = conversation or (posted.conversation if kind == "personal"
                                    else f"{posted.conversation};messageid=1700")
    body = activity("", h.connector.url, kind=kind, conversation=conversation, sender=sender)
    body.pop("text")
    body["value"] = button(posted, title)["data"]
    response = await h.send(body)
    assert response.status == 202
    return response


async def test_a_close_pair_gets_a_card_and_the_click_answers_that_intent_and_stores_the_label(monkeypatch):
    custom = ScriptedAdapter("custom", default=Scripted("Your card is on its way.", "card_arrival", 0.41, extra=CLOSE))
    async with teams_harness(monkeypatch, custom=custom) as h:
        await h.send(activity("my card 4111 1111 1111 1111 where is it", h.connector.url, conversation="a:1clar"))
        [asked] = await h.connector.wait_for(lambda c: c.messages())
        assert asked.text.startswith("I want to get this right. Do you mean:")
        assert "Your card is on its way." not in asked.text
        assert titles(asked) == [KB.title("card_arrival"), KB.title("card_delivery_estimate"), "Something else"]
        assert all(b["type"] == "Action.Submit" for b in buttons(asked))

        await click(h, asked, KB.title("card_delivery_estimate"))
        answer = (await h.connector.wait_for(lambda c: len(c.messages()) >= 2 and c.messages()))[1]
        assert answer.conversation == "a:1clar" and answer.text.startswith(escape(KB.answer("card_delivery_estimate")))
        assert titles(answer) == ["👍 Helpful", "👎 Not helpful"]
        [label] = await rows(h, Clarification)
        assert (label["chosen"], label["offered"]) == ("card_delivery_estimate", "card_arrival,card_delivery_estimate")
        assert "4111" not in label["question"] and "[CARD]" in label["question"]


async def test_talk_to_a_human_posts_a_case_to_the_handoff_conversation_and_tells_the_customer(monkeypatch):
    async with teams_harness(monkeypatch, teams_handoff_conversation=HANDOFF, handoff_expected_minutes=20) as h:
        body = activity("I want to talk to a human, my IBAN is GB82WEST12345698765432", h.connector.url,
                        conversation="a:1human")
        await h.send(body)
        await h.connector.wait_for(lambda c: len(c.messages()) >= 2)
        [case] = sent_to(h, HANDOFF)
        [told] = sent_to(h, "a:1human")
        assert "A person will reply in this conversation" in told.text and "20 minutes" in told.text
        card = card_of(case)
        facts = {f["title"]: f["value"] for b in card["body"] if b["type"] == "FactSet" for f in b["facts"]}
        assert "GB82" not in str(card) and "[IBAN]" in facts["Question"]
        assert "the customer asked for a person" in card["body"][0]["text"]
        assert f"https://teams.microsoft.com/l/message/a%3A1human/{body['id']}" in str(card)
        assert titles(case) == ["Take it", "Resolved"]
        assert h.identity.verify_outbound(case.authorization) and h.custom.prompts == []
        [stored] = await rows(h, HandoffCase)
        assert (stored["reason"], stored["status"]) == ("asked", "open")
        assert stored["post_ref"].startswith(f"{HANDOFF}|act-")


async def test_take_it_silences_the_bot_in_that_conversation_and_resolved_lifts_the_silence(monkeypatch):
    async with teams_harness(monkeypatch, teams_handoff_conversation=HANDOFF) as h:
        await h.send(activity("Can I speak to an agent please", h.connector.url, conversation="a:1take"))
        [case] = await h.connector.wait_for(lambda c: sent_to(h, HANDOFF))
        await click(h, case, "Take it", conversation="a:1take")  # forged from the customer's chat: ignored
        await h.settled()
        assert [p.method for p in h.connector.posted if p.type == "message"] == ["POST", "POST"]
        await click(h, case, "Take it", sender=user(7), kind="channel")
        [taken] = await h.connector.wait_for(lambda c: [p for p in c.posted if p.method == "PUT"])
        assert taken.conversation == HANDOFF and taken.reply_to == (await rows(h, HandoffCase))[0]["post_ref"].split(
            "|")[1]
        assert card_of(taken)["body"][-1]["text"] == "Taken by aad-user-7" and titles(taken) == ["Resolved"]

        await h.send(activity("hello? where is my card", h.connector.url, conversation="a:1take"))
        await h.send(activity("where is my card", h.connector.url, conversation="a:1other"))  # answered
        await h.connector.wait_for(lambda c: sent_to(h, "a:1other"))
        await h.settled()
        assert len(sent_to(h, "a:1take")) == 1  # only "a person will reply"
        assert h.custom.prompts == ["where is my card"]

        await click(h, case, "Resolved", sender=user(7), kind="channel")
        await h.connector.wait_for(lambda c: len([p for p in c.posted if p.method == "PUT"]) == 2)
        await h.send(activity("and now?", h.connector.url, conversation="a:1take"))
        await h.connector.wait_for(lambda c: len(sent_to(h, "a:1take")) == 2)
        [stored] = await rows(h, HandoffCase)
        assert (stored["status"], stored["taken_by"], stored["resolved_by"]) == ("resolved", "aad-user-7", "aad-user-7")


async def test_an_urgent_intent_carries_the_button_and_no_destination_gives_the_support_text(monkeypatch):
    custom = ScriptedAdapter("custom", default=Scripted(KB.answer("lost_or_stolen_card"), "lost_or_stolen_card", 0.28))
    async with teams_harness(monkeypatch, custom=custom) as h:
        await h.send(activity("Someone nicked my wallet with my card in it", h.connector.url, conversation="a:1urg"))
        [answer] = await h.connector.wait_for(lambda c: c.messages())
        assert titles(answer) == ["Talk to a person", "👍 Helpful", "👎 Not helpful"]
        assert button(answer, "Talk to a person")["style"] == "positive"
        await click(h, answer, "Talk to a person")
        told = await h.connector.wait_for(lambda c: len(c.messages()) == 2 and c.messages()[1])
        assert KB.support_contact and escape(KB.support_contact) in told.text
        [stored] = await rows(h, HandoffCase)
        assert (stored["reason"], stored["status"]) == ("urgent", "undelivered")


async def test_feedback_is_stored_once_per_user_and_answer_and_the_reason_card_stores_a_reason(monkeypatch):
    async with teams_harness(monkeypatch) as h:
        await h.send(activity("Where is my card?", h.connector.url, conversation="a:1fb"))
        [answer] = await h.connector.wait_for(lambda c: c.messages())
        assert answer.text.startswith("Your card is on its way.")
        await click(h, answer, "👍 Helpful")
        await h.settled()
        await click(h, answer, "👍 Helpful")
        await h.settled()
        [row] = await rows(h, Feedback)
        assert (row["positive"], row["source"], row["arm"]) == (True, "teams", "served")  # the router's arm
        assert (row["model"], row["intent"], row["confidence"]) == ("custom", "card_arrival", 0.93)

        await click(h, answer, "👎 Not helpful")
        ask = await h.connector.wait_for(lambda c: len(c.messages()) == 2 and c.messages()[1])
        assert titles(ask) == ["Wrong topic", "Not helpful", "I wanted a person"]
        await click(h, ask, "Wrong topic")
        await click(h, answer, "👍 Helpful", sender=user(2))
        await h.settled()
        first, second = await rows(h, Feedback)
        assert (first["positive"], first["reason"]) == (False, "wrong_topic") and second["positive"] is True
        assert first["user_hash"] != second["user_hash"] and "aad-user" not in first["user_hash"]
