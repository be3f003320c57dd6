"""Live, in-memory metrics of one model: a rolling window of latencies plus running totals."""

from __future__ import annotations

from collections import Counter, deque
from typing import TYPE_CHECKING, Any

from llm.stats import percentile

if TYPE_CHECKING:
    from llm.adapters.base import GenerationResult


class ModelMetrics:
    def __init__(self, window: int = 10_000):
        self.latencies_ms: deque[float] = deque(maxlen=window)  # successful calls only
        self.requests = 0
        self.errors = 0
        self.error_kinds: Counter[str] = Counter()
        self.latency_sum_ms = 0.0  # successful calls only, all time (the average is not windowed)
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self.confidence_sum = 0.0
        self.cost_usd = 0.0

    def record(self, result: GenerationResult, latency_ms: float | None = None) -> None:
        """A successful call; `latency_ms` overrides the result's own (e.g. the call's wall time)."""
        latency = result.latency_ms if latency_ms is None else latency_ms
        self.requests += 1
        self.latencies_ms.append(latency)
        self.latency_sum_ms += latency
        self.prompt_tokens += result.prompt_tokens
        self.completion_tokens += result.completion_tokens
        self.confidence_sum += result.confidence
        self.cost_usd += result.cost_usd or 0.0

    def record_error(self, latency_ms: float, kind: str) -> None:
        self.requests += 1
        self.errors += 1
        self.error_kinds[kind] += 1

    def snapshot(self) -> dict[str, Any]:
        ok = self.requests - self.errors
        lat = list(self.latencies_ms)
        return {
            "requests": self.requests,
            "errors": self.errors,
            "error_rate": self.errors / self.requests if self.requests else 0.0,
            "latency_avg_ms": self.latency_sum_ms / ok if ok else None,
            "latency_p50_ms": percentile(lat, 50),
            "latency_p99_ms": percentile(lat, 99),
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "avg_confidence": self.confidence_sum / ok if ok else None,
            "cost_usd": self.cost_usd,
            "error_kinds": dict(self.error_kinds),
        }
