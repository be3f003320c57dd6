"""What Teams users see: channel mentions in their reply chain, 1:1 and group chats, typing, streaming in 1:1 only,
split long answers, refusals and apologies, through the real app, the SDK and the fake Bot Connector."""

from __future__ import annotations

import asyncio
import re

from tests.scripted import Scripted, ScriptedAdapter
from tests.teams_helpers import activity, teams_harness

MEDIUM_ANSWER = " ".join(f"Step {i}: check the card details in the app before disputing a payment." for i in range(20))
HUGE_ANSWER = " ".join(f"Sentence {i} explains one more detail of how card payments are disputed." for i in range(300))


async def test_a_channel_mention_is_answered_in_its_reply_chain_without_the_mention(monkeypatch):
    async with teams_harness(monkeypatch) as h:
        body = activity("Where is my card?", h.connector.url, kind="channel", mention=True)
        response = await h.send(body)
        assert response.status == 202
        [reply] = await h.connector.wait_for(lambda c: c.messages())
        assert reply.conversation.startswith("19:channel@thread.tacv2") and reply.reply_to == body["id"]
        assert reply.text.startswith("Your card is on its way.") and "93% confidence" in reply.text
        assert reply.activity["replyToId"] == body["id"] and reply.activity["from"]["id"] == body["recipient"]["id"]
        assert h.custom.prompts == ["Where is my card?"]  # the mention is removed
        assert h.identity.verify_outbound(reply.authorization)  # the bot's own token, for the connector
        assert reply.stream_type() is None


async def test_a_one_to_one_chat_is_always_answered_and_a_group_chat_only_when_mentioned(monkeypatch):
    async with teams_harness(monkeypatch) as h:
        await h.send(activity("hello, anyone?", h.connector.url, kind="groupChat"))  # no mention: not for the bot
        await h.send(activity("Where is my card?", h.connector.url, kind="groupChat", mention=True))
        await h.send(activity("And my PIN?", h.connector.url, kind="personal"))
        await h.connector.wait_for(lambda c: len(c.messages()) >= 2)
        await h.settled()
        assert sorted(h.custom.prompts) == ["And my PIN?", "Where is my card?"]
        assert len(h.connector.messages()) == 2


async def test_a_typing_indicator_runs_while_the_model_works_and_the_turn_is_accepted_first(monkeypatch):
    gate = asyncio.Event()
    custom = ScriptedAdapter("custom").enqueue(Scripted("Late but here.", gate=gate))
    async with teams_harness(monkeypatch, custom=custom) as h:
        response = await asyncio.wait_for(h.send(activity("my card?", h.connector.url)), 30)
        assert response.status == 202 and not gate.is_set()  # accepted although the model cannot answer yet
        await h.connector.wait_for(lambda c: c.typing())
        assert h.connector.messages() == []
        gate.set()
        [reply] = await h.connector.wait_for(lambda c: c.messages())
        assert reply.text.startswith("Late but here.")


async def test_long_answers_stream_in_one_to_one_chats_only(monkeypatch):
    custom = ScriptedAdapter("custom", default=Scripted(MEDIUM_ANSWER, "card_arrival", 0.9))
    async with teams_harness(monkeypatch, custom=custom) as h:
        await h.send(activity("How do I dispute?", h.connector.url, kind="personal", conversation="a:1one"))
        final = await h.connector.wait_for(lambda c: [p for p in c.messages() if p.stream_type() == "final"])
        assert final[0].text.startswith(MEDIUM_ANSWER) and "confidence" in final[0].text
        assert any(p.stream_type() == "streaming" for p in h.connector.typing() if p.conversation == "a:1one")
        await h.send(activity("How do I dispute?", h.connector.url, kind="groupChat", mention=True,
                              conversation="19:group@thread.v2"))
        [group] = await h.connector.wait_for(lambda c: [p for p in c.messages() if p.conversation.startswith("19:")])
        assert group.text.startswith(MEDIUM_ANSWER) and group.stream_type() is None
        assert not any(p.stream_type() for p in h.connector.posted if p.conversation.startswith("19:"))


async def test_an_answer_beyond_the_size_limit_is_split_never_cut(monkeypatch):
    custom = ScriptedAdapter("custom", default=Scripted(HUGE_ANSWER, "card_arrival", 0.9))
    async with teams_harness(monkeypatch, custom=custom, show_model_footer=False) as h:
        await h.send(activity("Tell me everything", h.connector.url, kind="channel", mention=True))
        await h.connector.wait_for(lambda c: any("Sentence 299" in p.text for p in c.messages()))
        texts = [p.text for p in h.connector.messages()]
        assert len(texts) >= 3 and all(len(t) <= 7000 for t in texts)
        assert " ".join(texts) == HUGE_ANSWER


async def test_an_oversized_message_gets_an_explanation_and_reaches_no_model(monkeypatch):
    async with teams_harness(monkeypatch) as h:
        await h.send(activity("x" * 4001, h.connector.url))
        [reply] = await h.connector.wait_for(lambda c: c.messages())
        assert "4,001 characters" in reply.text and "at most 4,000" in reply.text
        assert h.custom.prompts == []


async def test_an_empty_mention_gets_help_with_example_questions_as_buttons(monkeypatch):
    async with teams_harness(monkeypatch) as h:
        await h.send(activity("", h.connector.url, kind="channel", mention=True))
        [reply] = await h.connector.wait_for(lambda c: c.messages())
        assert "Ask me a banking question" in reply.text
        assert [a["type"] for a in reply.activity["suggestedActions"]["actions"]] == ["imBack", "imBack"]


async def test_a_model_failure_gets_the_apology_with_a_reference_and_no_exception_text(monkeypatch, caplog):
    custom = ScriptedAdapter("custom").enqueue(Scripted(error=RuntimeError("checkpoint corrupted")))
    gemini = ScriptedAdapter("gemini").enqueue(Scripted(error=RuntimeError("quota exceeded")))
    async with teams_harness(monkeypatch, custom=custom, gemini=gemini) as h:
        await h.send(activity("Where is my card?", h.connector.url))
        [reply] = await h.connector.wait_for(lambda c: c.messages())
        reference = re.search(r"`([0-9a-f]{12})`", reply.text).group(1)
        assert reply.text.startswith("Sorry") and "quota" not in reply.text and "checkpoint" not in reply.text
        assert any(reference in r.getMessage() and "quota exceeded" in r.getMessage() for r in caplog.records)


async def test_show_model_footer_off_leaves_only_the_answer(monkeypatch):
    async with teams_harness(monkeypatch, show_model_footer=False) as h:
        await h.send(activity("Where is my card?", h.connector.url))
        [reply] = await h.connector.wait_for(lambda c: c.messages())
        assert reply.text == "Your card is on its way."
