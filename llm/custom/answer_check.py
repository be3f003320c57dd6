"""Whether the trained model's own answers are the knowledge base's, letter for letter."""

from __future__ import annotations

from collections.abc import Sequence

from llm.custom.predictor import Predictor
from llm.knowledge_base import KnowledgeBase


def exact_answers(predictor: Predictor, questions: Sequence[str], kb: KnowledgeBase, batch_size: int = 16) -> float:
    """Share of `questions` whose reply, as served (the intent, then the model's own greedy answer with the KV
    cache), is the knowledge-base entry for the intent it decoded."""
    replies = [
        reply
        for start in range(0, len(questions), batch_size)
        for reply in predictor.respond(list(questions[start : start + batch_size]))
    ]
    return sum(r.answer == kb.answer(r.intent.label) for r in replies) / max(1, len(replies))
