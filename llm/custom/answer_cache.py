"""Each intent's answer, generated once by the model and checked against the knowledge base.

The custom model's answer tokens attend to the label and the answer only (Predictor.answers_follow_intent), so
its answer is a function of the decoded intent: generating it again for every request would only repeat the
same ~100 greedy steps. The cache is filled when the checkpoint loads, one batch for all intents; a request then
costs one intent classification and a lookup. An intent missing from the cache (it should not happen) is
generated on the spot and kept: a miss.

Not thread-safe: the custom model's single worker thread fills and reads it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from llm.custom.predictor import Predictor
from llm.knowledge_base import KnowledgeBase


@dataclass(frozen=True)
class CachedAnswer:
    generated: str  # the model's own greedy answer after the intent
    completion_tokens: int  # label + answer tokens (+ <eos>) of that generation
    finished: bool  # it ended with <eos> within the token budget
    kb_entry: str  # the knowledge base's answer for the intent

    @property
    def diverges(self) -> bool:
        """The generation is not the knowledge-base entry letter for letter (the entry is shown instead)."""
        return self.generated != self.kb_entry

    @property
    def shown(self) -> str:
        return self.kb_entry if self.diverges else self.generated


class AnswerCache:
    def __init__(self, predictor: Predictor, kb: KnowledgeBase, batch_size: int = 128):
        if not predictor.answers_follow_intent:
            raise ValueError("this model's answers depend on the question: they cannot be cached per intent")
        self.predictor, self.kb, self.batch_size = predictor, kb, batch_size
        self._answers: dict[str, CachedAnswer] = {}

    def fill(self, labels: Iterable[str] | None = None) -> None:
        """Generate and keep the answers of `labels` (default: every label of the checkpoint), batched."""
        todo = list(self.predictor.labels if labels is None else labels)
        for start in range(0, len(todo), self.batch_size):
            chunk = todo[start : start + self.batch_size]
            for label, (text, tokens, finished) in zip(chunk, self.predictor.answers_for(chunk), strict=True):
                self._answers[label] = CachedAnswer(text, tokens, finished, self.kb.answer(label))

    def answers(self, labels: Sequence[str]) -> list[tuple[CachedAnswer, bool]]:
        """(answer, found in the cache) of each label; those not cached yet are generated now and kept."""
        missing = list(dict.fromkeys(label for label in labels if label not in self._answers))
        if missing:
            self.fill(missing)
        return [(self._answers[label], label not in missing) for label in labels]

    def __len__(self) -> int:
        return len(self._answers)

    @property
    def divergent(self) -> list[str]:
        """The intents whose generated answer differs from their knowledge-base entry."""
        return [label for label, answer in self._answers.items() if answer.diverges]
