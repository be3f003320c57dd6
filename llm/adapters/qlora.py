"""Llama 3.1-8B with the Banking77 QLoRA adapter, behind one of three backends (QLORA_BACKEND):

- vllm:          in-process vLLM AsyncLLM with a LoRARequest (CUDA GPU)
- vllm-server:   a remote `vllm serve --enable-lora` at VLLM_SERVER_URL, model name `banking` (production)
- transformers:  base + adapter through transformers and peft on CPU

The model writes an intent label; the label is constrained to the valid ones, and the user sees the knowledge
base's answer for it. vllm, bitsandbytes, transformers and peft are imported only when a backend loads.

Every backend gets the redacted question (llm/redact.py, as Gemini does): card numbers, IBANs, accounts, e-mails
and phones never reach a model server, its logs, or a GPU process. The vllm-server backend sends VLLM_API_KEY as
its Bearer key (the server's `--api-key`).
"""

from __future__ import annotations

import time
from typing import ClassVar

from llm.adapters.base import GenerationResult, HealthStatus, ModelAdapter
from llm.config import LLMSettings
from llm.errors import ModelUnavailableError
from llm.knowledge_base import load_knowledge_base
from llm.qlora.backend import QLoRABackend
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

    async def load(self) -> None:
        await self.backend.load()
        self._loaded = True

    async def _generate(self, prompt: str) -> GenerationResult:
        if not self._loaded:
            raise ModelUnavailableError(f"the qlora model ({self.backend.name} backend) is not loaded")
        redacted, redactions = redact_with_counts(prompt)  # no backend ever sees personal data
        started = time.perf_counter()
        raw = await self.backend.generate(redacted)
        latency_ms = (time.perf_counter() - started) * 1000
        parsed = parse_intent(raw.text, self.knowledge_base.intents)
        return GenerationResult(
            text=self.knowledge_base.answer(parsed.intent),
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
                "redactions": redactions,
            },
        )

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
