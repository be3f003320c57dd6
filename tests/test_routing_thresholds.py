"""Choosing the escalation threshold for the route's best accuracy, and pairing two models' answers per question."""

from __future__ import annotations

import asyncio

import pytest

from llm.banking77 import Example
from llm.routing.offline import answer_each
from llm.routing.thresholds import choose_threshold
from tests.scripted import Scripted, ScriptedAdapter


def test_maximize_accuracy_takes_the_best_route_at_the_smallest_share():
    confidence = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8]
    first = [False, False, True, False, True, True, False, True]
    escalation = [True, True, False, True, True, True, True, False]  # wrong where the first is right at 0.3, 0.8
    best = choose_threshold(confidence, first, escalation, maximize_accuracy=True)
    # right answers escalating k = 0..8: 4 5 6 5 6 6 6 7 6: past the dip at 3, and not the last question
    assert (best.threshold, best.escalation_share, best.expected_accuracy) == (0.8, 7 / 8, 7 / 8)
    everything = choose_threshold(confidence, first, [True] * 8, maximize_accuracy=True)
    # 8 right from k = 7 on: the smallest share that reaches it
    assert (everything.threshold, everything.escalation_share, everything.expected_accuracy) == (0.8, 7 / 8, 1.0)
    with pytest.raises(ValueError, match="exactly one"):
        choose_threshold(confidence, first, escalation, maximize_accuracy=True, target_escalation=0.2)


def test_a_threshold_never_splits_equal_confidences():
    confidence = [0.2, 0.5, 0.5, 0.9]
    first = [False, False, True, True]
    escalation = [True, True, False, True]
    # between the two 0.5s escalating one would help; a threshold can only take both (no gain) or neither
    best = choose_threshold(confidence, first, escalation, maximize_accuracy=True)
    assert (best.threshold, best.escalation_share, best.expected_accuracy) == (0.5, 0.25, 0.75)
    share = choose_threshold(confidence, first, escalation, target_escalation=0.5)
    assert (share.threshold, share.escalation_share) == (0.5, 0.25)


def test_questions_that_may_not_escalate_keep_the_first_answer():
    confidence = [0.1, 0.2, 0.3, 0.9]
    first = [False, False, True, True]
    escalation = [True, True, True, True]
    kept = [False, True, True, True]  # the first model called question 0 out of scope
    best = choose_threshold(confidence, first, escalation, maximize_accuracy=True, escalatable=kept)
    assert (best.threshold, best.escalation_share, best.expected_accuracy) == (0.3, 0.25, 0.75)


def test_answers_come_back_in_the_order_of_the_questions_whatever_order_they_finish_in():
    gates = [asyncio.Event() for _ in range(4)]
    intents = ["card_arrival", "card_linking", "exchange_rate", "age_limit"]
    adapter = ScriptedAdapter("first").enqueue(*(Scripted(intent=i, confidence=0.1 * (n + 1), gate=g)
                                                 for n, (i, g) in enumerate(zip(intents, gates, strict=True))))
    examples = [Example(f"question {n}", intent) for n, intent in enumerate(intents)]
    finished: list[int] = []

    async def run():
        task = asyncio.create_task(answer_each(adapter, examples, concurrency=4, progress=finished.append))
        deadline = asyncio.get_running_loop().time() + 30
        while len(adapter.prompts) < 4:  # noqa: ASYNC110 - every question asked, each waiting on its gate
            assert asyncio.get_running_loop().time() < deadline, "the questions were not all asked"
            await asyncio.sleep(0.001)
        for gate in reversed(gates):  # the last question finishes first
            gate.set()
        return await task

    answers = asyncio.run(run())
    assert adapter.prompts == [e.text for e in examples]
    assert [a.intent for a in answers] == intents
    assert [a.confidence for a in answers] == pytest.approx([0.1, 0.2, 0.3, 0.4])
    assert len(finished) == 4
