"""The contract every model adapter fulfils, and the result it returns."""

from __future__ import annotations

import abc
import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass, field, replace
from typing import Any, ClassVar

from llm.metrics import ModelMetrics
from llm.priority import background_work

OUT_OF_SCOPE = "out_of_scope"
HEALTH_PROBE = "How do I activate my new card?"


@dataclass(frozen=True)
class GenerationResult:
    text: str  # the answer the user sees
    intent: str  # one of the 77 Banking77 labels, or "out_of_scope"
    latency_ms: float  # wall time of the model call; from the pipeline: the whole request, fallbacks included
    prompt_tokens: int
    completion_tokens: int
    confidence: float  # 0..1, the model's confidence in `intent`
    model_version: str
    device: str  # "cpu", "gpu" or "cloud"
    cost_usd: float | None = None  # None where the model has no per-call price
    model: str = ""  # adapter name, e.g. "custom"
    fallback_from: str | None = None  # set by the pipeline when an earlier model failed
    request_id: str | None = None  # set by the pipeline
    model_latency_ms: float | None = None  # set by the pipeline: the answering model's own time
    extra: dict[str, Any] = field(default_factory=dict)  # adapter-specific figures

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["tokens"] = self.tokens
        return data


@dataclass(frozen=True)
class HealthStatus:
    healthy: bool
    reason: str = ""  # why not healthy; empty when healthy
    latency_ms: float | None = None


class ModelAdapter(abc.ABC):
    """One model behind a uniform async interface.

    Subclasses set the class attributes and implement ``_generate``; ``generate`` adds timing
    and per-model metrics around it. Heavy, one-off work (loading weights) goes in ``load``,
    which the factory awaits exactly once.
    """

    name: ClassVar[str]  # short name used in FALLBACK_ORDER, e.g. "custom"
    device: ClassVar[str]  # "cpu", "gpu" or "cloud"
    default_version: ClassVar[str]  # e.g. "custom_model_built_0.0.0"
    sends_data_off_host: ClassVar[bool] = False  # True for cloud APIs: prompts are redacted first
    default_timeout_s: ClassVar[float] = 30.0
    estimated_call_cost_usd: ClassVar[float | None] = None  # paid models: a call's cost before any is seen

    @classmethod
    def servable_versions(cls, settings: Any) -> list[str]:
        """The version strings this adapter can serve (a switch to any other is refused)."""
        return [cls.default_version]

    def __init__(self, version: str | None = None):
        self.version = version or self.default_version
        self.metrics = ModelMetrics()

    async def load(self) -> None:
        """Prepare the model for use. Raise ModelUnavailableError when it cannot serve."""

    @abc.abstractmethod
    async def _generate(self, prompt: str) -> GenerationResult:
        """Answer one prompt. Must not block the event loop."""

    async def generate(self, prompt: str, *, record: bool = True) -> GenerationResult:
        """Answer one prompt. `record=False` keeps health probes and benchmarks out of the live metrics."""
        if not record:
            return await self._generate(prompt)
        started = time.perf_counter()
        try:
            result = await self._generate(prompt)
        except asyncio.CancelledError:
            self.metrics.record_error((time.perf_counter() - started) * 1000, "cancelled")
            raise
        except Exception as exc:
            self.metrics.record_error((time.perf_counter() - started) * 1000, type(exc).__name__)
            raise
        self.metrics.record(result)
        return result

    async def _stream(self, prompt: str) -> AsyncIterator[str | GenerationResult]:
        """Text deltas as the model writes them, then the GenerationResult, whose text is the deltas joined.
        A model without streaming sends its whole answer as one delta."""
        result = await self._generate(prompt)
        yield result.text
        yield result

    async def stream(self, prompt: str, *, record: bool = True) -> AsyncIterator[str | GenerationResult]:
        """Answer one prompt as it is written: text deltas, then the GenerationResult (extra["ttft_ms"]: time
        to the first delta). Only deltas the customer may see are yielded (LLMs check each sentence first)."""
        started = time.perf_counter()
        ttft_ms: float | None = None
        try:
            async for item in self._stream(prompt):
                if isinstance(item, GenerationResult):
                    ttft = ttft_ms if ttft_ms is not None else (time.perf_counter() - started) * 1000
                    result = replace(item, extra=item.extra | {"ttft_ms": round(ttft, 3), "streamed": True})
                    if record:
                        self.metrics.record(result)
                    yield result
                    return
                if ttft_ms is None and item:
                    ttft_ms = (time.perf_counter() - started) * 1000
                yield item
        except (asyncio.CancelledError, GeneratorExit):
            if record:
                self.metrics.record_error((time.perf_counter() - started) * 1000, "cancelled")
            raise
        except Exception as exc:
            if record:
                self.metrics.record_error((time.perf_counter() - started) * 1000, type(exc).__name__)
            raise
        raise RuntimeError(f"{self.name}: the stream ended without a result")

    async def health_check(self) -> HealthStatus:
        """Runs one real inference, bounded by the model's timeout; subclasses may first check prerequisites."""
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self.default_timeout_s):
                with background_work():  # live requests go first where the model queues
                    await self.generate(HEALTH_PROBE, record=False)
        except TimeoutError:
            return HealthStatus(False, f"the health check timed out after {self.default_timeout_s:g}s")
        except Exception as exc:  # noqa: BLE001 - any failure means unhealthy
            return HealthStatus(False, f"{type(exc).__name__}: {exc}")
        return HealthStatus(True, latency_ms=(time.perf_counter() - started) * 1000)

    async def device_utilization(self) -> float | None:
        """How busy the model's device is (0..1), where the model can tell (vLLM's metrics); None otherwise."""
        return None

    def get_metrics(self) -> dict[str, Any]:
        return {"model": self.name, "version": self.version, "device": self.device, **self.metrics.snapshot()}

    async def aclose(self) -> None:
        """Release resources (HTTP sessions, engines)."""
