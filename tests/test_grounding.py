"""The faithfulness guard: invented facts and claimed actions are rejected and the entry is shown; a faithful
paraphrase passes, whole or sentence by sentence."""

from __future__ import annotations

import pytest

from llm.grounding import GROUNDED, KNOWLEDGE_BASE, SentenceGuard, check, ground
from llm.knowledge_base import load_knowledge_base

KB = load_knowledge_base()
LOST = KB.answer("lost_or_stolen_card")
QUESTION = "I lost my card in Lisbon yesterday and I fly home tomorrow, what do I do?"
FAITHFUL = ("Sorry to hear that. Since you lost it in Lisbon yesterday, open the app, tap Cards, select the card "
            "and freeze it right away so nobody can use it. If you're sure it's gone, report it as lost or stolen "
            "there and order a replacement. Check your recent transactions and contact support about any you "
            "don't recognise.")


def test_a_faithful_paraphrase_passes():
    assert check(FAITHFUL, LOST, QUESTION).ok
    text, extra = ground(FAITHFUL, "lost_or_stolen_card", LOST, QUESTION)
    assert text == FAITHFUL and extra["answer_source"] == "model" and extra["grounding"] == "passed"
    assert extra["grounded_on"] == "lost_or_stolen_card"


@pytest.mark.parametrize(("answer", "reason"), [
    (FAITHFUL + " A replacement card costs £5.", "invented number 5"),
    (FAITHFUL + " There is a fee of five euros for the replacement.", "invented number 5"),
    ("Freeze it in the app under Cards. Your replacement arrives within 3 working days.", "invented number 3"),
    ("Freeze it under Cards, then call us on +44 20 7946 0958.", "invented phone number"),
    ("Freeze it under Cards, then e-mail help@bank.example.com.", "invented e-mail address"),
    ("Freeze it under Cards, or see https://bank.example.com/lost.", "invented URL"),
    ("I have frozen your card, so no one can use it.", "claims an action"),
    ("Don't worry: your card has been cancelled and a new one is on its way.", "claims an action"),
    ("Freeze it under Cards and upgrade to Premium Metal for travel insurance.", "invented name 'Premium'"),
    ("Freeze it under Cards; replacements ship on Monday.", "invented date 'Monday'"),
    ("Freeze it under Cards. " * 80, "characters; the limit"),
])
def test_an_unfaithful_answer_is_rejected_and_the_entry_shown(answer, reason):
    verdict = check(answer, LOST, QUESTION)
    assert not verdict.ok and reason in verdict.reason
    text, extra = ground(answer, "lost_or_stolen_card", LOST, QUESTION)
    assert text == LOST and extra["grounding"] == "rejected" and extra["answer_source"] == KNOWLEDGE_BASE


def test_a_changed_number_of_days_is_rejected():
    question = "My transfer has been pending for 2 days, when will it arrive?"
    entry = "Transfers usually arrive within 2 working days."
    assert check("It should arrive within 2 working days.", entry, question).ok
    assert check("It should arrive within two working days.", entry, question).ok
    verdict = check("It should arrive within 5 working days.", entry, question)
    assert not verdict.ok and "5" in verdict.reason


def test_numbers_from_the_question_may_be_repeated():
    question = "I was charged 2.50 EUR twice at an ATM, why?"
    entry = KB.answer("cash_withdrawal_charge") if "cash_withdrawal_charge" in KB.intents else LOST
    assert check("You mention a 2.50 EUR charge, taken twice.", entry, question).ok


def test_knowledge_base_style_shows_the_entry_without_judging():
    text, extra = ground(FAITHFUL, "lost_or_stolen_card", LOST, QUESTION, style=KNOWLEDGE_BASE)
    assert text == LOST and extra["grounding"] == "off"
    assert GROUNDED == "grounded"


def test_the_sentence_guard_sends_only_sentences_that_passed():
    guard = SentenceGuard(LOST, QUESTION)
    sent = []
    for delta in ["Open the app, tap Ca", "rds and freeze it. Then ", "order a replacement. It costs ", "£5. Bye"]:
        sent += guard.feed(delta)
    sent += guard.finish()
    assert sent == ["Open the app, tap Cards and freeze it. ", "Then order a replacement. "]
    assert guard.failed is not None and "invented number 5" in guard.failed.reason


def test_the_sentence_guard_passes_a_faithful_stream_whole():
    guard = SentenceGuard(LOST, QUESTION)
    sent = [s for i in range(0, len(FAITHFUL), 7) for s in guard.feed(FAITHFUL[i:i + 7])] + guard.finish()
    assert "".join(sent) == FAITHFUL and guard.failed is None and guard.text == FAITHFUL
