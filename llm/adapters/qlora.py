"""Llama 3.1-8B with the Banking77 QLoRA adapter, behind one of three backends (QLORA_BACKEND):

- vllm:          in-process vLLM AsyncLLM with a LoRARequest (CUDA GPU)
- vllm-server:   a remote `vllm serve --enable-lora` at VLLM_SERVER_URL, model name `banking` (production)
- transformers:  base + adapter through transformers and peft on CPU

The model writes an intent label (constrained to the valid ones), a newline and its answer, as it was trained.
With ANSWER_STYLE=grounded (the default) the user sees that answer where the faithfulness guard finds every fact
of it in the label's knowledge-base entry or the question (llm/grounding.py), else the entry; streamed, each
sentence is checked before it goes out. With ANSWER_STYLE=knowledge_base generation stops after the label and the
user sees the entry. vllm, bitsandbytes, transformers and peft are imported only when a backend loads.

Every backend gets the redacted question (llm/redact.py, as Gemini does): card numbers, IBANs, accounts, e-mails
and phones never reach a model server, its logs, or a GPU process. The vllm-server backend sends VLLM_API_KEY as
its Bearer key (the server's `--api-key`).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any, ClassVar

from llm.adapters.base import OUT_OF_SCOPE, GenerationResult, HealthStatus, ModelAdapter
from llm.config import LLMSettings
from llm.context import with_context
from llm.errors import ModelResponseError, ModelUnavailableError
from llm.grounding import GROUNDED, GroundingCounts, StreamedAnswer
from llm.knowledge_base import load_knowledge_base
from llm.qlora.backend import QLoRABackend, RawGeneration
from llm.qlora.parsing import label_confidence, parse_intent
from llm.redact import redact_with_counts


def make_backend(settings: LLMSettings) -> QLoRABackend:
    if settings.qlora_backend == "vllm":
        from llm.qlora.backend_vllm import VLLMBackend

        return VLLMBackend(settings.qlora_base_model, settings.qlora_adapter_path)
    if settings.qlora_backend == "vllm-server":
        from llm.qlora.backend_server import ServerBackend

        return ServerBackend(settings.vllm_server_url, timeout_s=settings.model_timeout_s,
                             api_key=settings.vllm_api_key)
    from llm.qlora.backend_transformers import TransformersBackend

    return TransformersBackend(settings.qlora_base_model, settings.qlora_adapter_path)


class QLoRAAdapter(ModelAdapter):
    name: ClassVar[str] = "qlora"
    device: ClassVar[str] = "gpu"
    default_version: ClassVar[str] = "qlora_vllm_finetuned_model_v1.0.0"

    def __init__(self, settings: LLMSettings, version: str | None = None, *, backend: QLoRABackend | None = None):
        super().__init__(version)
        self.settings = settings
        self.backend = backend or make_backend(settings)  # an explicit backend: scripts/gpu_check.py
        self.knowledge_base = load_knowledge_base()
        self._loaded = False
        self.grounding = GroundingCounts()

    @property
    def grounded(self) -> bool:
        """The model's own answer is shown (checked), where the backend can stream label and answer."""
        return self.settings.answer_style == GROUNDED and hasattr(self.backend, "stream")

    async def load(self) -> None:
        await self.backend.load()
        self._loaded = True

    async def _generate(self, prompt: str) -> GenerationResult:
        if self.grounded:
            async for item in self._stream(prompt):
                if isinstance(item, GenerationResult):
                    return item
        if not self._loaded:
            raise ModelUnavailableError(f"the qlora model ({self.backend.name} backend) is not loaded")
        redacted, redactions = redact_with_counts(prompt)  # no backend ever sees personal data
        started = time.perf_counter()
        raw = await self.backend.generate(with_context(redacted))
        latency_ms = (time.perf_counter() - started) * 1000
        entry = self.knowledge_base.answer(parse_intent(raw.text, self.knowledge_base.intents).intent)
        return self._result(raw, raw.text, entry, latency_ms, {"redactions": redactions})

    async def _stream(self, prompt: str) -> AsyncIterator[str | GenerationResult]:
        """The label (hidden), then the answer as it is generated, sentence by sentence once checked."""
        if not self.grounded:
            result = await self._generate(prompt)
            yield result.text
            yield result
            return
        if not self._loaded:
            raise ModelUnavailableError(f"the qlora model ({self.backend.name} backend) is not loaded")
        redacted, redactions = redact_with_counts(prompt)
        started = time.perf_counter()
        text, answer, raw = "", None, None
        async for item in self.backend.stream(with_context(redacted)):
            if isinstance(item, RawGeneration):
                raw = item
                break
            text += item
            if answer is None and "\n" in text:
                label, _, rest = text.partition("\n")
                intent = parse_intent(label, self.knowledge_base.intents).intent
                style = self.settings.answer_style if intent != OUT_OF_SCOPE else "knowledge_base"
                answer = StreamedAnswer(intent, self.knowledge_base.answer(intent), redacted, style)
                for piece in answer.start() + answer.feed(rest):
                    yield piece
            elif answer is not None:
                for piece in answer.feed(item):
                    yield piece
        if raw is None:
            raise ModelResponseError(f"the {self.backend.name} backend's stream ended without a result")
        label = raw.text.partition("\n")[0]
        if answer is None:  # no newline: a label and no answer (cut at max tokens): the entry
            intent = parse_intent(label, self.knowledge_base.intents).intent
            answer = StreamedAnswer(intent, self.knowledge_base.answer(intent), redacted, "knowledge_base")
            for piece in answer.start():
                yield piece
        for piece in answer.finish():
            yield piece
        label_raw = RawGeneration(label, raw.token_logprobs[: raw.label_tokens], raw.prompt_tokens,
                                  raw.completion_tokens, raw.extra)
        extra = answer.extra() | {"redactions": redactions}
        yield self._result(label_raw, label, answer.text, (time.perf_counter() - started) * 1000, extra)

    def _result(self, raw: RawGeneration, label: str, text: str, latency_ms: float,
                extra: dict[str, Any]) -> GenerationResult:
        """`raw`: the label's generation (its token log-probs give the confidence)."""
        parsed = parse_intent(label, self.knowledge_base.intents)
        self.grounding.count(extra)
        return GenerationResult(
            text=text,
            intent=parsed.intent,
            latency_ms=latency_ms,
            prompt_tokens=raw.prompt_tokens,
            completion_tokens=raw.completion_tokens,
            confidence=label_confidence(raw.token_logprobs, parsed),
            model_version=self.version,
            device="cpu" if self.backend.name == "transformers" else self.device,
            model=self.name,
            extra={
                **raw.extra,
                "raw_label": parsed.raw,
                "label_match": parsed.match,
                "tokens_per_s": raw.completion_tokens / (latency_ms / 1000) if latency_ms > 0 else None,
                "knowledge_base_version": self.knowledge_base.version,
                **extra,
            },
        )

    def get_metrics(self) -> dict[str, Any]:
        return {**super().get_metrics(), **self.grounding.snapshot()}

    async def health_check(self) -> HealthStatus:
        """Unavailable (with the reason) when the backend cannot load; else one real inference."""
        if not self._loaded:
            try:
                await self.load()
            except ModelUnavailableError as exc:
                return HealthStatus(False, str(exc))
        return await super().health_check()

    async def device_utilization(self) -> float | None:
        """The vLLM server's KV-cache usage, where the backend can read vLLM's own metrics."""
        reader = getattr(self.backend, "device_utilization", None)
        return await reader() if reader is not None else None

    async def aclose(self) -> None:
        await self.backend.aclose()
        self._loaded = False
