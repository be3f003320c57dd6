"""Time to first token per model: how long a customer waited before the first words of the answer appeared
(every model tried before it included). Kept in memory per pipeline, the latest values per model."""

from __future__ import annotations

from collections import deque
from typing import Any
from weakref import WeakKeyDictionary

from llm.stats import percentile

KEEP = 2000  # latest values per model

_by_pipeline: WeakKeyDictionary[Any, TTFT] = WeakKeyDictionary()


class TTFT:
    def __init__(self) -> None:
        self.values: dict[str, deque[float]] = {}

    def record(self, model: str, ttft_ms: float) -> None:
        self.values.setdefault(model, deque(maxlen=KEEP)).append(ttft_ms)

    def snapshot(self, model: str) -> dict[str, Any]:
        values = sorted(self.values.get(model, ()))
        if not values:
            return {"ttft_p50_ms": None, "ttft_p99_ms": None, "ttft_count": 0}
        return {"ttft_p50_ms": percentile(values, 50), "ttft_p99_ms": percentile(values, 99),
                "ttft_count": len(values)}

    def models(self) -> list[str]:
        return list(self.values)


def ttft_of(pipeline: Any) -> TTFT:
    """The pipeline's TTFT figures (created on first use)."""
    if pipeline not in _by_pipeline:
        _by_pipeline[pipeline] = TTFT()
    return _by_pipeline[pipeline]
