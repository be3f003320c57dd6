"""Per-model live figures of a pipeline, computed from the record of every model call its requests made.

A model that always fails shows a 100% error rate (even one that never loaded), a model skipped by its open
breaker counts each skip as a failed call, and a request on which every model failed is charged to each.
An answer that was escalated counts for the model that gave it (latency, confidence, cost) though not shown.
Routing counters beside them: escalations (from, to, outcome) and shadow calls with their agreement.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

from llm.calls import ERROR, ESCALATION, OK
from llm.metrics import ModelMetrics

if TYPE_CHECKING:
    from llm.adapters.base import GenerationResult
    from llm.calls import ModelCall


class LiveMetrics:
    def __init__(self, window: int = 10_000):
        self.window = window
        self._by_model: dict[str, ModelMetrics] = {}
        self.escalations: Counter[tuple[str, str, str]] = Counter()  # (from, to, outcome) -> calls
        self.shadow_calls: Counter[tuple[str, bool]] = Counter()  # (model, agreed with the served intent)
        self.shadow_cost_usd: Counter[str] = Counter()

    def models(self) -> list[str]:
        return list(self._by_model)

    def record(self, calls: list[ModelCall], result: GenerationResult | None) -> None:
        """The calls of one request; `result` is the answer shown (None when every model failed)."""
        for call in calls:
            metrics = self._by_model.get(call.model)
            if metrics is None:
                metrics = self._by_model[call.model] = ModelMetrics(self.window)
            if call.role == ESCALATION:
                self.escalations[(call.escalated_from or "?", call.model, call.outcome)] += 1
            if call.outcome == OK and result is not None and call.model == result.model:
                metrics.record(result, latency_ms=call.latency_ms)
            elif call.outcome == OK:  # an answer replaced by an escalation's
                metrics.requests += 1
                metrics.latencies_ms.append(call.latency_ms)
                metrics.latency_sum_ms += call.latency_ms
                metrics.confidence_sum += call.confidence or 0.0
                metrics.cost_usd += call.cost_usd or 0.0
            else:
                metrics.record_error(call.latency_ms, call.error_kind if call.outcome == ERROR else call.outcome)

    def record_shadow(self, model: str, agreed: bool, latency_ms: float, cost_usd: float | None) -> None:
        """A shadow call that answered: whether its intent matched the one shown to the user."""
        self.shadow_calls[(model, agreed)] += 1
        self.shadow_cost_usd[model] += cost_usd or 0.0

    def snapshot(self, model: str) -> dict[str, Any]:
        metrics = self._by_model.get(model)
        return (metrics or ModelMetrics(1)).snapshot()
