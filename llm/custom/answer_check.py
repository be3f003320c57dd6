"""Whether the trained model's own answers are the knowledge base's, letter for letter."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from llm.custom.predictor import Predictor
from llm.knowledge_base import KnowledgeBase


def exact_answers(
    predictor: Predictor,
    questions: Sequence[str],
    kb: KnowledgeBase,
    batch_size: int = 16,
    on_batch: Callable[[int], None] | None = None,
) -> float:
    """Share of `questions` whose reply, as served (the intent, then the model's own greedy answer with the KV
    cache), is the knowledge-base entry for the intent it decoded. on_batch(n) after each batch of n questions."""
    replies = []
    for start in range(0, len(questions), batch_size):
        replies += predictor.respond(list(questions[start : start + batch_size]))
        if on_batch is not None:
            on_batch(len(questions[start : start + batch_size]))
    return sum(r.answer == kb.answer(r.intent.label) for r in replies) / max(1, len(replies))
