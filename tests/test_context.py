"""Conversation context: a thread's earlier turns reach the LLM, redacted; another thread's never do; a top-level
DM only carries recent turns; stored turns hold no personal data; retention purges old turns."""

from __future__ import annotations

from datetime import timedelta

from bot.conversation.context import ConversationContext
from bot.conversation.core import Message
from llm.context import history, with_context
from storage.context_turns import ContextStore
from storage.models import utcnow
from tests.fake_slack import BOT_USER_ID
from tests.scripted import Scripted, ScriptedAdapter
from tests.slack_helpers import mention, message, slack_harness


class ContextReader(ScriptedAdapter):
    """Records each prompt as an LLM would send it: the conversation so far, then the new message."""

    def __init__(self, name: str):
        super().__init__(name, default=Scripted("Freeze it in the app under Cards.", "lost_or_stolen_card", 0.9))
        self.sent: list[str] = []
        self.turns: list[int] = []

    async def _generate(self, prompt):
        self.sent.append(with_context(prompt))
        self.turns.append(len(history()))
        return await super()._generate(prompt)


async def test_a_thread_s_earlier_turns_reach_the_model_redacted_and_no_other_thread_s_do():
    model = ContextReader("custom")
    async with slack_harness(custom=model) as h:
        first = mention(f"<@{BOT_USER_ID}> I lost my card 4111 1111 1111 1111, mail me at ana@example.com",
                        channel="C0042")
        await h.post_event(first)
        await h.fake.wait_for(lambda f: len(f.posts()) >= 1)
        await h.post_event(mention(f"<@{BOT_USER_ID}> and how long will the new one take?", channel="C0042",
                                   thread_ts=first["ts"]))
        await h.fake.wait_for(lambda f: len(f.posts()) >= 2)
        await h.post_event(mention(f"<@{BOT_USER_ID}> what is the exchange rate?", channel="C0042"))
        await h.fake.wait_for(lambda f: len(f.posts()) >= 3)
        assert model.turns == [0, 1, 0]
        follow_up = model.sent[1]
        assert "Customer: I lost my card" in follow_up and "Assistant: Freeze it in the app under Cards." in follow_up
        assert follow_up.endswith("and how long will the new one take?")
        assert "4111" not in follow_up and "ana@example.com" not in follow_up and "[CARD]" in follow_up
        assert model.sent[2] == "what is the exchange rate?"  # a new thread starts with nothing before it
        rows = await ContextStore(h.runtime.db).recent(f"slack:C0042:{first['ts']}", 10, utcnow() - timedelta(1))
        assert len(rows) == 2 and all("4111" not in r["question"] and "ana@" not in r["question"] for r in rows)


async def test_a_top_level_dm_carries_only_recent_turns(tmp_path):
    model = ContextReader("custom")
    async with slack_harness(custom=model, context_window_min=30) as h:
        store = ContextStore(h.runtime.db)
        await store.add("slack:D0001", "old question", "old answer", "card_arrival", "custom",
                        at=utcnow() - timedelta(hours=2))
        await store.add("slack:D0001", "recent question", "recent answer", "card_arrival", "custom")
        await h.post_event(message("and the new card?"))
        await h.fake.wait_for(lambda f: f.posts())
        assert model.turns == [1] and "recent question" in model.sent[0] and "old question" not in model.sent[0]


async def test_retention_purges_old_turns():
    async with slack_harness(context_retention_hours=24) as h:
        store = ContextStore(h.runtime.db)
        await store.add("slack:C1:1", "q", "a", at=utcnow() - timedelta(hours=25))
        await store.add("slack:C1:1", "q2", "a2")
        memory = ConversationContext(h.runtime)
        assert await memory.purge() == 1
        turns = await memory.turns(Message(source="slack", user="U1", text="x", conversation="slack:C1:1"))
        assert [t.question for t in turns] == ["q2"]
