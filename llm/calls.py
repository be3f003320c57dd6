"""One record per model call a request makes: the first try (primary, or canary for a user in the canary's
share), each fallback, an escalation, a shadow call.

Per-model error rates are computed from these records, so a model that always fails shows 100%, and a request
on which every model failed is charged to each model it tried.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from llm.errors import BudgetExhaustedError, CircuitOpenError, ModelTimeoutError

if TYPE_CHECKING:
    from llm.adapters.base import GenerationResult

OK, ERROR, TIMEOUT, SKIPPED = "ok", "error", "timeout", "skipped"  # skipped: open breaker or spent budget
OUTCOMES = (OK, ERROR, TIMEOUT, SKIPPED)
PRIMARY, FALLBACK, CANARY, ESCALATION, SHADOW = "primary", "fallback", "canary", "escalation", "shadow"
ROLES = (PRIMARY, FALLBACK, CANARY, ESCALATION, SHADOW)


@dataclass(frozen=True)
class ModelCall:
    model: str  # adapter name
    outcome: str  # ok | error | timeout | skipped
    latency_ms: float  # wall time of this call, loading included (0 when skipped)
    role: str = PRIMARY  # one of ROLES
    error_kind: str | None = None  # the exception's class name, e.g. "ModelResponseError"
    model_version: str | None = None
    intent: str | None = None  # what the call understood (ok calls)
    confidence: float | None = None  # calibrated
    cost_usd: float | None = None  # None where the model has no price
    escalated_from: str | None = None  # an escalation: the model whose answer was not sure enough

    def to_row(self) -> dict[str, Any]:
        return asdict(self)


def ok_call(model: str, result: GenerationResult, latency_ms: float, role: str,
            escalated_from: str | None = None) -> ModelCall:
    return ModelCall(model, OK, latency_ms, role, model_version=result.model_version, intent=result.intent,
                     confidence=result.confidence, cost_usd=result.cost_usd, escalated_from=escalated_from)


def failed_call(model: str, exc: BaseException, latency_ms: float, role: str,
                escalated_from: str | None = None) -> ModelCall:
    """The record of a call that raised `exc`."""
    if isinstance(exc, CircuitOpenError | BudgetExhaustedError):
        return ModelCall(model, SKIPPED, 0.0, role, type(exc).__name__, escalated_from=escalated_from)
    outcome = TIMEOUT if isinstance(exc, ModelTimeoutError | TimeoutError) else ERROR
    return ModelCall(model, outcome, latency_ms, role, type(exc).__name__, escalated_from=escalated_from)
