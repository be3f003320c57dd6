"""Per-model live figures of a pipeline, computed from the record of every model call its requests made.

A model that always fails shows a 100% error rate (even one that never loaded), a model skipped by its open
breaker counts each skip as a failed call, and a request on which every model failed is charged to each.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from llm.calls import ERROR, OK
from llm.metrics import ModelMetrics

if TYPE_CHECKING:
    from llm.adapters.base import GenerationResult
    from llm.calls import ModelCall


class LiveMetrics:
    def __init__(self, window: int = 10_000):
        self.window = window
        self._by_model: dict[str, ModelMetrics] = {}

    def models(self) -> list[str]:
        return list(self._by_model)

    def record(self, calls: list[ModelCall], result: GenerationResult | None) -> None:
        """The calls of one request; `result` is the answer shown (None when every model failed)."""
        for call in calls:
            metrics = self._by_model.get(call.model)
            if metrics is None:
                metrics = self._by_model[call.model] = ModelMetrics(self.window)
            if call.outcome == OK and result is not None and call.model == result.model:
                metrics.record(result, latency_ms=call.latency_ms)
            elif call.outcome != OK:
                metrics.record_error(call.latency_ms, call.error_kind if call.outcome == ERROR else call.outcome)

    def snapshot(self, model: str) -> dict[str, Any]:
        metrics = self._by_model.get(model)
        return (metrics or ModelMetrics(1)).snapshot()
