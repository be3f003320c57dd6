"""The custom decoder-only transformer, trained from scratch on Banking77 (`bankbot train custom`), on the CPU.

The model decodes the intent under a label constraint; its answer tokens attend to the label and the answer
only, so each intent has exactly one answer. That answer is generated once per intent when the checkpoint
loads (llm/custom/answer_cache.py) and a request costs one intent classification and a lookup. The user sees
the model's own answer; where it differs from the knowledge base's entry for the intent, the entry is shown
instead and the divergence is counted (`kb_divergences`, and `kb_divergent_intents` at load, in get_metrics()).
A checkpoint whose answers see the question (trained with isolate_answers off) generates per request instead.
Concurrent requests are micro-batched, live requests before background work (llm/priority.py).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from llm.adapters.base import OUT_OF_SCOPE, GenerationResult, ModelAdapter
from llm.config import LLMSettings
from llm.context import is_follow_up, recent_intent
from llm.custom.answer_cache import AnswerCache, CachedAnswer
from llm.custom.batcher import MicroBatcher
from llm.custom.calibration import load_calibration
from llm.custom.checkpoint import TRAIN_HINT, checkpoint_exists
from llm.custom.predictor import Intent, Predictor
from llm.errors import ModelUnavailableError
from llm.knowledge_base import KnowledgeBase, load_knowledge_base
from llm.redact import strip_personal_data

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Served:
    """One request's share of a batch, as the worker thread returns it."""

    intent: Intent
    answer: CachedAnswer | None  # None below the out-of-scope threshold
    from_cache: bool  # the answer came from the per-intent cache (False: generated for this request)
    intent_ms: float  # time until the batch's intents were decoded
    batch_size: int


class CustomTransformerAdapter(ModelAdapter):
    name: ClassVar[str] = "custom"
    device: ClassVar[str] = "cpu"
    default_version: ClassVar[str] = "custom_model_built_0.0.0"
    default_timeout_s: ClassVar[float] = 10.0
    max_batch: ClassVar[int] = 16  # requests per micro-batch
    batch_window_ms: ClassVar[float] = 0.0  # an idle batcher only yields once, so requests already scheduled
    # join: a request is now a ~2 ms classification, and under load those that arrive while a batch runs form
    # the next one (a 2 ms wait doubled the latency of a lone request and bought no throughput)
    torch_threads: ClassVar[int] = 1  # intra-op threads: the model's ops are small, so a second thread
    # mostly adds synchronisation cost (and leaves no core for the event loop); set process-wide at load

    def __init__(self, settings: LLMSettings, version: str | None = None):
        super().__init__(version)
        self.checkpoint_dir = settings.custom_checkpoint_dir
        self.predictor: Predictor | None = None
        self.kb: KnowledgeBase | None = None
        self.answer_cache: AnswerCache | None = None  # None when the checkpoint's answers see the question
        self._batcher: MicroBatcher[str, Served] | None = None
        self._load_lock = asyncio.Lock()
        self.kb_divergences = 0  # answers served whose generation differed from the knowledge-base entry
        self.answers_generated = 0  # in-scope answers served
        self.kb_divergent_intents: int | None = None  # intents whose generated answer differs, found at load
        self.answer_cache_hits = 0
        self.answer_cache_misses = 0

    async def load(self) -> None:
        """Read the checkpoint and generate each intent's answer, in a worker thread; ModelUnavailableError when
        there is no checkpoint."""
        async with self._load_lock:
            if self.predictor is not None:
                return
            if not checkpoint_exists(self.checkpoint_dir):
                raise ModelUnavailableError(f"no custom model checkpoint in {self.checkpoint_dir}: {TRAIN_HINT}")
            predictor, kb, cache = await asyncio.to_thread(self._load_model)
            if kb.version != predictor.meta.kb_version:
                log.warning(
                    "custom model learned knowledge base %s, current is %s: answers will diverge until "
                    "it is retrained (`bankbot train custom`)",
                    predictor.meta.kb_version,
                    kb.version,
                )
            if cache is not None:
                divergent = cache.divergent
                self.kb_divergent_intents = len(divergent)
                log.info(
                    "custom model: answers of %d intents generated at load, %d differ from the knowledge base%s",
                    len(cache),
                    len(divergent),
                    f" (shown as the entry instead): {', '.join(divergent[:10])}" if divergent else "",
                )
            else:
                log.warning("custom model: its answers see the question, so each request generates its own")
            self.kb, self.answer_cache = kb, cache
            self._batcher = MicroBatcher(self._respond, self.max_batch, self.batch_window_ms)
            self.predictor = predictor

    def _load_model(self) -> tuple[Predictor, KnowledgeBase, AnswerCache | None]:
        torch.set_num_threads(self.torch_threads)
        predictor, kb = Predictor.load(self.checkpoint_dir), load_knowledge_base()
        calibration = load_calibration(self.checkpoint_dir)  # temperature + threshold fitted on validation
        if calibration is not None:
            predictor.temperature, predictor.meta.oos_threshold = calibration.temperature, calibration.oos_threshold
        cache = None
        if predictor.answers_follow_intent:
            cache = AnswerCache(predictor, kb)
            cache.fill()
        return predictor, kb, cache

    def _respond(self, prompts: list[str]) -> list[Served]:
        """One batch, in the worker thread: the intents, then each in-scope intent's answer."""
        assert self.predictor is not None and self.kb is not None
        threshold = self.predictor.meta.oos_threshold
        started = time.perf_counter()
        if self.answer_cache is None:  # answers that see the question: generated with the intent
            replies = self.predictor.respond(prompts, min_confidence=threshold)
            return [
                Served(r.intent, _generated(r.intent, r.answer, r.completion_tokens, r.finished, self.kb, threshold),
                       False, r.intent_ms, r.batch_size)
                for r in replies
            ]
        intents = self.predictor.classify(prompts)
        intent_ms = (time.perf_counter() - started) * 1000
        in_scope = [i for i, intent in enumerate(intents) if intent.confidence >= threshold]
        found = dict(zip(in_scope, self.answer_cache.answers([intents[i].label for i in in_scope]), strict=True))
        return [
            Served(intent, *found.get(i, (None, False)), intent_ms, len(prompts)) for i, intent in enumerate(intents)
        ]

    async def _generate(self, prompt: str) -> GenerationResult:
        started = time.perf_counter()
        await self.load()
        assert self._batcher is not None and self.predictor is not None and self.kb is not None
        served, queue_ms = await self._batcher.submit_timed(without_personal_data(prompt))
        intent, answer = served.intent, served.answer
        divergence = False
        follow_up = self._follow_up(prompt) if answer is None and self.answer_cache is not None else None
        if follow_up is not None:  # a short follow-up it cannot place: the conversation's intent a moment ago
            intent = Intent(follow_up, intent.confidence, intent.prompt_tokens)
            answer = self.answer_cache.answers([follow_up])[0][0]
        if answer is None:
            label, text = OUT_OF_SCOPE, self.kb.out_of_scope_answer
            completion_tokens = self.predictor.max_label_tokens  # the label it decoded, no answer
        else:
            label, text, completion_tokens = intent.label, answer.shown, answer.completion_tokens
            divergence = answer.diverges
            self.answers_generated += 1
            self.kb_divergences += divergence
            if served.from_cache:
                self.answer_cache_hits += 1
            else:
                self.answer_cache_misses += 1
        return GenerationResult(
            text=text,
            intent=label,
            latency_ms=(time.perf_counter() - started) * 1000,
            prompt_tokens=intent.prompt_tokens,
            completion_tokens=completion_tokens,
            confidence=intent.confidence,
            model_version=self.version,
            device=self.device,
            cost_usd=None,
            model=self.name,
            extra={
                "kb_divergence": divergence,
                "answer_cached": served.from_cache,
                "intent_ms": round(served.intent_ms, 3),
                "batch_size": served.batch_size,
                "queue_ms": round(queue_ms, 3),  # waiting for its batch (behind live traffic, for a benchmark)
                "predicted_intent": intent.label,  # the best label even when below the threshold
                "oos_threshold": self.predictor.meta.oos_threshold,
                **({"context_intent": follow_up} if follow_up is not None else {}),
                **({"top_intents": [[intent.label, intent.confidence], list(intent.runner_up)]}
                   if intent.runner_up and label == intent.label and follow_up is None else {}),  # clarify.py
            },
        )

    def _follow_up(self, prompt: str) -> str | None:
        """The intent of the conversation's latest turn, for a short follow-up below the threshold."""
        intent = recent_intent() if is_follow_up(prompt) else None
        return intent if intent is not None and self.kb is not None and intent in self.kb.intents else None

    async def _stream(self, prompt: str) -> AsyncIterator[str | GenerationResult]:
        """The answer's tokens one by one, as its token loop wrote them (decoded piece by piece), then the result;
        the pieces joined are the result's text."""
        result = await self._generate(prompt)
        for piece in self._pieces(result.text):
            yield piece
            await asyncio.sleep(0)  # one piece per turn of the loop, as a token loop hands them out
        yield result

    def _pieces(self, text: str) -> list[str]:
        tok = self.predictor.tok if self.predictor is not None else None
        if tok is not None:
            ids = tok.encode(text)
            decoded = [tok.decode(ids[: i + 1]) for i in range(len(ids))]
            pieces = [b[len(a):] for a, b in zip(["", *decoded], decoded, strict=False)]
            if "".join(pieces) == text and all(decoded[i].startswith(decoded[i - 1]) for i in range(1, len(ids))):
                return [p for p in pieces if p]
        return re.findall(r"\S+\s*|\s+", text)  # the tokenizer does not round-trip this text: word pieces

    def get_metrics(self) -> dict[str, Any]:
        batcher = self._batcher
        lookups = self.answer_cache_hits + self.answer_cache_misses
        return {
            **super().get_metrics(),
            "kb_divergences": self.kb_divergences,
            "answers_generated": self.answers_generated,
            "kb_divergence_rate": self.kb_divergences / self.answers_generated if self.answers_generated else 0.0,
            "kb_divergent_intents": self.kb_divergent_intents,
            "answer_cache_hits": self.answer_cache_hits,
            "answer_cache_misses": self.answer_cache_misses,
            "answer_cache_hit_rate": self.answer_cache_hits / lookups if lookups else None,
            "batches": batcher.batches if batcher else 0,
            "mean_batch_size": batcher.items / batcher.batches if batcher and batcher.batches else None,
            "background_items": batcher.background_items if batcher else 0,
        }

    async def aclose(self) -> None:
        if self._batcher is not None:
            self._batcher.close()


def _generated(
    intent: Intent, text: str, tokens: int, finished: bool, kb: KnowledgeBase, threshold: float
) -> CachedAnswer | None:
    """A reply generated for one request, in the cache's terms; None below the out-of-scope threshold."""
    return CachedAnswer(text, tokens, finished, kb.answer(intent.label)) if intent.confidence >= threshold else None


def without_personal_data(prompt: str) -> str:
    """The question without card numbers, IBANs, e-mails...: they say nothing about the intent, and digits
    the model never saw in training only confuse it ("my card 4111 ... has not arrived" is card_arrival)."""
    return strip_personal_data(prompt) or prompt
