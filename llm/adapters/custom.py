"""The custom decoder-only transformer, trained from scratch on Banking77 (`bankbot train custom`), on the CPU.

The model decodes the intent under a label constraint, then generates the answer itself with its KV cache.
The user sees the model's own answer; where it differs from the knowledge base's entry for the predicted
intent, the entry is shown instead and the divergence is counted (`kb_divergences` in get_metrics()).
Concurrent requests are micro-batched: those arriving within a few milliseconds run as one batch.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, ClassVar

import torch

from llm.adapters.base import OUT_OF_SCOPE, GenerationResult, ModelAdapter
from llm.config import LLMSettings
from llm.custom.batcher import MicroBatcher
from llm.custom.checkpoint import TRAIN_HINT, checkpoint_exists
from llm.custom.predictor import Predictor, Reply
from llm.errors import ModelUnavailableError
from llm.knowledge_base import KnowledgeBase, load_knowledge_base
from llm.redact import strip_personal_data

log = logging.getLogger(__name__)


class CustomTransformerAdapter(ModelAdapter):
    name: ClassVar[str] = "custom"
    device: ClassVar[str] = "cpu"
    default_version: ClassVar[str] = "custom_model_built_0.0.0"
    default_timeout_s: ClassVar[float] = 10.0
    max_batch: ClassVar[int] = 16  # requests per micro-batch
    batch_window_ms: ClassVar[float] = 2.0  # how long an idle batcher waits for concurrent requests
    torch_threads: ClassVar[int] = 1  # intra-op threads: the model's ops are small, so a second thread
    # mostly adds synchronisation cost (and leaves no core for the event loop); set process-wide at load

    def __init__(self, settings: LLMSettings, version: str | None = None):
        super().__init__(version)
        self.checkpoint_dir = settings.custom_checkpoint_dir
        self.predictor: Predictor | None = None
        self.kb: KnowledgeBase | None = None
        self._batcher: MicroBatcher[str, Reply] | None = None
        self._load_lock = asyncio.Lock()
        self.kb_divergences = 0  # generated answers that differed from the knowledge-base entry
        self.answers_generated = 0

    async def load(self) -> None:
        """Read the checkpoint once, in a worker thread; ModelUnavailableError when there is none."""
        async with self._load_lock:
            if self.predictor is not None:
                return
            if not checkpoint_exists(self.checkpoint_dir):
                raise ModelUnavailableError(f"no custom model checkpoint in {self.checkpoint_dir}: {TRAIN_HINT}")
            predictor = await asyncio.to_thread(self._load_predictor)
            self.kb = load_knowledge_base()
            if self.kb.version != predictor.meta.kb_version:
                log.warning(
                    "custom model learned knowledge base %s, current is %s: answers will diverge until "
                    "it is retrained (`bankbot train custom`)",
                    predictor.meta.kb_version,
                    self.kb.version,
                )
            self._batcher = MicroBatcher(self._respond, self.max_batch, self.batch_window_ms)
            self.predictor = predictor

    def _load_predictor(self) -> Predictor:
        torch.set_num_threads(self.torch_threads)
        return Predictor.load(self.checkpoint_dir)

    def _respond(self, prompts: list[str]) -> list[Reply]:
        assert self.predictor is not None
        return self.predictor.respond(prompts, min_confidence=self.predictor.meta.oos_threshold)

    async def _generate(self, prompt: str) -> GenerationResult:
        started = time.perf_counter()
        await self.load()
        assert self._batcher is not None and self.predictor is not None and self.kb is not None
        reply = await self._batcher.submit(without_personal_data(prompt))
        intent = reply.intent
        out_of_scope = intent.confidence < self.predictor.meta.oos_threshold
        divergence = False
        if out_of_scope:
            label, text = OUT_OF_SCOPE, self.kb.out_of_scope_answer
        else:
            label, expected = intent.label, self.kb.answer(intent.label)
            divergence = reply.answer != expected
            text = expected if divergence else reply.answer
            self.answers_generated += 1
            self.kb_divergences += divergence
        return GenerationResult(
            text=text,
            intent=label,
            latency_ms=(time.perf_counter() - started) * 1000,
            prompt_tokens=intent.prompt_tokens,
            completion_tokens=reply.completion_tokens,
            confidence=intent.confidence,
            model_version=self.version,
            device=self.device,
            cost_usd=None,
            model=self.name,
            extra={
                "kb_divergence": divergence,
                "intent_ms": round(reply.intent_ms, 3),
                "batch_size": reply.batch_size,
                "predicted_intent": intent.label,  # the best label even when below the threshold
                "oos_threshold": self.predictor.meta.oos_threshold,
            },
        )

    def get_metrics(self) -> dict[str, Any]:
        batcher = self._batcher
        return {
            **super().get_metrics(),
            "kb_divergences": self.kb_divergences,
            "answers_generated": self.answers_generated,
            "kb_divergence_rate": self.kb_divergences / self.answers_generated if self.answers_generated else 0.0,
            "batches": batcher.batches if batcher else 0,
            "mean_batch_size": batcher.items / batcher.batches if batcher and batcher.batches else None,
        }

    async def aclose(self) -> None:
        if self._batcher is not None:
            self._batcher.close()


def without_personal_data(prompt: str) -> str:
    """The question without card numbers, IBANs, e-mails...: they say nothing about the intent, and digits
    the model never saw in training only confuse it ("my card 4111 ... has not arrived" is card_arrival)."""
    return strip_personal_data(prompt) or prompt
