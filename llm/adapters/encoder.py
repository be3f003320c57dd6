"""A pretrained sentence encoder (all-MiniLM-L6-v2) with an intent head (`bankbot train encoder`), on the CPU.

The head picks the intent; the answer is the knowledge base's entry for it, so nothing is generated and nothing
leaves the host. Confidence is calibrated (a temperature fitted on the validation slice); below the checkpoint's
threshold (greetings, chit-chat, anything not about banking) the reply is the knowledge base's out-of-scope answer.
Concurrent requests are micro-batched in one worker thread, off the event loop, like the custom model.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, ClassVar

import torch

from llm.adapters.base import OUT_OF_SCOPE, GenerationResult, ModelAdapter
from llm.config import LLMSettings
from llm.context import is_follow_up, recent_intent
from llm.custom.batcher import MicroBatcher
from llm.encoder.checkpoint import TRAIN_HINT, checkpoint_exists
from llm.encoder.predictor import EncoderIntent, EncoderPredictor
from llm.errors import ModelUnavailableError
from llm.knowledge_base import KnowledgeBase, load_knowledge_base
from llm.redact import strip_personal_data

log = logging.getLogger(__name__)


class EncoderAdapter(ModelAdapter):
    name: ClassVar[str] = "encoder"
    device: ClassVar[str] = "cpu"
    default_version: ClassVar[str] = "encoder_minilm_v1.0.0"
    default_timeout_s: ClassVar[float] = 10.0
    max_batch: ClassVar[int] = 64  # requests per micro-batch
    batch_window_ms: ClassVar[float] = 0.0  # as custom: requests already scheduled join the batch, and those that
    # arrive while a batch runs form the next one; a wait would only add to a lone request's latency
    torch_threads: ClassVar[int] = 1  # as the custom model: one core for the model, one for the event loop

    def __init__(self, settings: LLMSettings, version: str | None = None):
        super().__init__(version)
        self.checkpoint_dir = settings.encoder_checkpoint_dir
        self.predictor: EncoderPredictor | None = None
        self.kb: KnowledgeBase | None = None
        self._batcher: MicroBatcher[str, EncoderIntent] | None = None
        self._load_lock = asyncio.Lock()

    async def load(self) -> None:
        """Read the checkpoint once, in a worker thread; ModelUnavailableError when there is none."""
        async with self._load_lock:
            if self.predictor is not None:
                return
            if not checkpoint_exists(self.checkpoint_dir):
                raise ModelUnavailableError(f"no encoder model checkpoint in {self.checkpoint_dir}: {TRAIN_HINT}")
            try:
                predictor = await asyncio.to_thread(self._load_predictor)
            except ImportError as exc:
                raise ModelUnavailableError(f"the encoder model needs transformers ({exc}): "
                                            "pip install -e '.[encoder]'") from None
            self.kb = load_knowledge_base()
            if self.kb.version != predictor.meta.kb_version:
                log.warning("encoder model was trained with knowledge base %s, current is %s (answers come from "
                            "the current one)", predictor.meta.kb_version, self.kb.version)
            batcher = MicroBatcher(predictor.classify, self.max_batch, self.batch_window_ms)
            for length in (1, 8, 24):  # in the batcher's own thread: its first calls pay for oneDNN's per-thread
                await batcher.submit(" ".join(["card"] * length))  # set-up, a few ms each
            self._batcher, self.predictor = batcher, predictor

    def _load_predictor(self) -> EncoderPredictor:
        torch.set_num_threads(self.torch_threads)
        return EncoderPredictor.load(self.checkpoint_dir)

    async def _generate(self, prompt: str) -> GenerationResult:
        started = time.perf_counter()
        await self.load()
        assert self._batcher is not None and self.predictor is not None and self.kb is not None
        intent = await self._batcher.submit(strip_personal_data(prompt) or prompt)
        threshold = self.predictor.meta.oos_threshold
        label = intent.label if intent.confidence >= threshold else OUT_OF_SCOPE
        follow_up = recent_intent() if label == OUT_OF_SCOPE and is_follow_up(prompt) else None
        if follow_up is not None and follow_up in self.kb.intents:  # a short follow-up it cannot place alone
            label = follow_up
        else:
            follow_up = None
        return GenerationResult(
            text=self.kb.answer(label),
            intent=label,
            latency_ms=(time.perf_counter() - started) * 1000,
            prompt_tokens=intent.prompt_tokens,
            completion_tokens=0,  # nothing is generated: the answer is the knowledge-base entry
            confidence=intent.confidence,
            model_version=self.version,
            device=self.device,
            cost_usd=None,
            model=self.name,
            extra={
                "tokenize_ms": round(intent.tokenize_ms, 3),
                "model_ms": round(intent.model_ms, 3),
                "batch_size": intent.batch_size,
                "predicted_intent": intent.label,  # the best label even when below the threshold
                "oos_threshold": threshold,
                **({"context_intent": follow_up} if follow_up is not None else {}),
                **({"top_intents": [[intent.label, intent.confidence], list(intent.runner_up)]}
                   if intent.runner_up and label == intent.label else {}),  # in scope: what a clarification offers
            },
        )

    def get_metrics(self) -> dict[str, Any]:
        batcher = self._batcher
        return {
            **super().get_metrics(),
            "batches": batcher.batches if batcher else 0,
            "mean_batch_size": batcher.items / batcher.batches if batcher and batcher.batches else None,
        }

    async def aclose(self) -> None:
        if self._batcher is not None:
            self._batcher.close()
