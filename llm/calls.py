"""One record per model call a request makes: the first try, each fallback (later: escalations, shadow calls).

Per-model error rates are computed from these records, so a model that always fails shows 100%, and a request
on which every model failed is charged to each model it tried.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from llm.errors import CircuitOpenError, ModelTimeoutError

OK, ERROR, TIMEOUT, SKIPPED = "ok", "error", "timeout", "skipped"  # outcomes; skipped: the breaker was open
OUTCOMES = (OK, ERROR, TIMEOUT, SKIPPED)


@dataclass(frozen=True)
class ModelCall:
    model: str  # adapter name
    outcome: str  # ok | error | timeout | skipped
    latency_ms: float  # wall time of this call, loading included (0 when skipped)
    role: str = "primary"  # primary | fallback
    error_kind: str | None = None  # the exception's class name, e.g. "ModelResponseError"
    model_version: str | None = None

    def to_row(self) -> dict[str, Any]:
        return asdict(self)


def failed_call(model: str, exc: BaseException, latency_ms: float, role: str) -> ModelCall:
    """The record of a call that raised `exc`."""
    if isinstance(exc, CircuitOpenError):
        return ModelCall(model, SKIPPED, 0.0, role, type(exc).__name__)
    outcome = TIMEOUT if isinstance(exc, ModelTimeoutError | TimeoutError) else ERROR
    return ModelCall(model, outcome, latency_ms, role, type(exc).__name__)
