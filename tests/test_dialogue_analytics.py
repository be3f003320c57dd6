"""Dialogue analytics on scripted Slack traffic: containment, hand-offs by reason, clarifications resolved by a
click, thumbs-up share with its Wilson interval, the most disliked intents."""

from __future__ import annotations

import pytest

from bot.conversation import benchmarks
from bot.conversation.analytics import dialogue_analytics
from tests.dialogue_helpers import buttons_of, click, feedback_of
from tests.scripted import Scripted, ScriptedAdapter
from tests.slack_helpers import message, slack_harness

ADMIN = "admin-token-for-tests"
CLOSE = {"top_intents": [["card_arrival", 0.41], ["card_delivery_estimate", 0.33]]}


async def test_the_figures_are_correct_on_scripted_traffic():
    custom = ScriptedAdapter("custom").enqueue(
        Scripted("A.", "card_arrival", 0.9),  # D1: answered, thumbs up
        Scripted("B.", "card_arrival", 0.9),  # D2: answered, thumbs down
        Scripted("C.", "card_arrival", 0.41, extra=CLOSE),  # D3: clarified, resolved by a click
        Scripted("D.", "lost_or_stolen_card", 0.8),  # D4: urgent, the customer clicks "Talk to a person"
        Scripted("E.", "card_arrival", 0.41, extra=CLOSE))  # D5: clarified, no click
    async with slack_harness(custom=custom, handoff_channel="CHAND", admin_api_token=ADMIN) as h:
        for n in range(1, 6):
            await h.post_event(message(f"question {n}", channel=f"D{n}"))
            await h.fake.wait_for(lambda f, n=n: len(f.posts()) == n)
        await h.post_event(message("let me talk to a human", channel="D6"))  # asked: no model
        await h.fake.wait_for(lambda f: len(f.posts()) == 7)
        by = {p["channel"]: p for p in h.fake.posts()}
        await click(h, by["D1"], feedback_of(by["D1"]), value=feedback_of(by["D1"])["positive_button"]["value"])
        await click(h, by["D2"], feedback_of(by["D2"]), value=feedback_of(by["D2"])["negative_button"]["value"])
        await click(h, by["D3"], buttons_of(by["D3"])[0])
        await click(h, by["D4"], buttons_of(by["D4"])[0])
        await h.fake.wait_for(lambda f: len([p for p in f.posts() if p["channel"] == "CHAND"]) == 2)
        await h.settled()

        figures = await dialogue_analytics(h.runtime.db)
        admin = await (await h.http.get(h.url + "/benchmark/summary", headers={"Authorization": f"Bearer {ADMIN}"}
                                        )).json()
        anonymous = await (await h.http.get(h.url + "/benchmark/summary")).json()
        metrics = await (await h.http.get(h.url + "/metrics")).text()
        table = await benchmarks.dialogue(h.runtime)
    assert admin["dialogue"]["custom"]["containment"] == pytest.approx(4 / 5) and "dialogue" not in anonymous
    assert 'bankbot_dialogue_containment{model="custom"} 0.8' in metrics
    assert 'bankbot_dialogue_handoff_rate{model="all",reason="asked"} 0.1666' in metrics
    assert 'bankbot_dialogue_clarified_by_click{model="custom"} 0.5' in metrics
    assert 'bankbot_dialogue_thumbs_up_share{model="custom"} 0.5' in metrics
    assert [r[:4] for r in table.rows] == [("custom", 5, "80.0%", "20.0%"), ("all", 6, "66.7%", "33.3%")]
    assert table.rows[0][7] == "50.0% [9.5%-90.5%] n=2" and table.rows[0][8] == "card_arrival"
    custom_, overall = figures["custom"], figures["all"]
    assert custom_["turns"] == 5 and overall["turns"] == 6
    assert custom_["containment"] == pytest.approx(4 / 5) and overall["containment"] == pytest.approx(4 / 6)
    assert overall["handoffs_by_reason"] == {"asked": pytest.approx(1 / 6), "urgent": pytest.approx(1 / 6)}
    assert custom_["handoffs_by_reason"] == {"urgent": pytest.approx(1 / 5)}
    assert custom_["clarification_rate"] == pytest.approx(2 / 5) and custom_["clarified_by_click"] == 0.5
    assert custom_["thumbs"] == 2 and custom_["thumbs_up"] == 0.5
    low, high = custom_["thumbs_up_ci95"]
    assert low == pytest.approx(0.0945, abs=1e-3) and high == pytest.approx(0.9055, abs=1e-3)  # Wilson, n=2
    assert custom_["most_disliked"] == ["card_arrival"]
