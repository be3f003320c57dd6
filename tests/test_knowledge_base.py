"""The knowledge base covers exactly the 77 Banking77 intents with short answers that invent no figures."""

from __future__ import annotations

import json
import re

import pytest

from llm import banking77
from llm.adapters.base import OUT_OF_SCOPE
from llm.knowledge_base import DEFAULT_PATH, KnowledgeBase, load_knowledge_base

INVENTED_FIGURE = re.compile(r"[£$€]\s*\d|%|\d+\s*(?:day|hour|minute|week|month|year)s?\b", re.IGNORECASE)


def test_every_banking77_intent_has_an_answer_and_nothing_else(banking77_dir):
    kb = load_knowledge_base()
    assert len(banking77.labels()) == 77
    assert set(kb.intents) == set(banking77.labels())
    assert len(kb.intents) == 77
    for intent in banking77.labels():
        assert kb.answer(intent).strip()


def test_intents_keep_the_file_order():
    kb = load_knowledge_base()
    file_order = list(json.loads(DEFAULT_PATH.read_text())["answers"])
    assert kb.intents == tuple(file_order)


@pytest.mark.parametrize("intent", list(json.loads(DEFAULT_PATH.read_text())["answers"]))
def test_answers_are_short_plain_text_without_invented_figures(intent):
    text = load_knowledge_base().answer(intent)
    assert 150 <= len(text) <= 450, f"{intent}: {len(text)} characters"
    assert not INVENTED_FIGURE.search(text), f"{intent}: {INVENTED_FIGURE.search(text).group()!r}"
    assert not re.search(r"[|*#`]|\n", text), f"{intent}: looks like markdown"


def test_out_of_scope_answer_says_what_the_bot_can_help_with():
    kb = load_knowledge_base()
    text = kb.answer(OUT_OF_SCOPE)
    assert text == kb.out_of_scope_answer
    assert text not in kb.answers.values()
    for topic in ("card", "transfer", "top-up", "exchange", "identity"):
        assert topic in text.lower()
    assert not INVENTED_FIGURE.search(text)


def test_unknown_intent_raises_a_clear_key_error():
    with pytest.raises(KeyError, match="unknown intent 'open_a_mortgage'"):
        load_knowledge_base().answer("open_a_mortgage")


def test_version_is_the_file_version_plus_content_hash_and_stable_across_loads():
    cached = load_knowledge_base()
    fresh = load_knowledge_base(DEFAULT_PATH)
    assert cached is load_knowledge_base()
    assert fresh is not cached
    assert fresh.version == cached.version
    assert re.fullmatch(r"1\.0\.0\+[0-9a-f]{8}", cached.version)


def _write(tmp_path, answers, version="2.0.0", out_of_scope="Ask me about cards."):
    path = tmp_path / "kb.json"
    path.write_text(json.dumps({"version": version, "answers": answers, "out_of_scope": out_of_scope}))
    return path


def test_version_changes_when_the_content_changes(tmp_path):
    first = load_knowledge_base(_write(tmp_path, {"card_arrival": "Check the app."}))
    second = load_knowledge_base(_write(tmp_path, {"card_arrival": "Check the app under Cards."}))
    assert first.version.startswith("2.0.0+")
    assert second.version.startswith("2.0.0+")
    assert first.version != second.version


@pytest.mark.parametrize(
    "answers, out_of_scope, message",
    [
        ({"card_arrival": "  "}, "Ask me.", "card_arrival"),
        ({"card_arrival": None}, "Ask me.", "card_arrival"),
        ({}, "Ask me.", "answers"),
        ({"card_arrival": "Check the app."}, "", "out_of_scope"),
        ({OUT_OF_SCOPE: "Hi."}, "Ask me.", "top-level"),
    ],
)
def test_invalid_files_are_rejected_on_load(tmp_path, answers, out_of_scope, message):
    with pytest.raises(ValueError, match=message):
        load_knowledge_base(_write(tmp_path, answers, out_of_scope=out_of_scope))


def test_is_a_frozen_dataclass():
    kb = load_knowledge_base()
    assert isinstance(kb, KnowledgeBase)
    with pytest.raises(AttributeError):
        kb.version = "tampered"  # type: ignore[misc]
