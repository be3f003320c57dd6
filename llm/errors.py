"""Errors the pipeline and its adapters raise. Each carries a reason fit to show an operator."""

from __future__ import annotations


class LLMError(Exception):
    """Base of every error raised by the llm package."""

    model_fault: bool = True  # counts against the model's circuit breaker (transport, timeout, 5xx, ...)


class ModelUnavailableError(LLMError):
    """A model cannot serve at all (missing checkpoint, no API key, missing GPU package)."""


class ModelResponseError(LLMError):
    """A model answered, but the answer could not be used (malformed output, bad status)."""


class AnswerRejectedError(ModelResponseError):
    """The model answered this one prompt unusably: a safety block, or malformed output.

    The request falls back, but the model is not at fault for everyone: the circuit breaker does not count it."""

    model_fault = False


class ModelTimeoutError(LLMError):
    """A model call ran past its timeout."""


class CircuitOpenError(LLMError):
    """The model was skipped: its circuit breaker is open."""


class BudgetExhaustedError(LLMError):
    """A paid model's daily budget (MODEL_BUDGET_USD_PER_DAY) is spent: the call is not made."""

    model_fault = False


class UnknownModelError(LLMError, ValueError):
    """A model name or version string that no adapter is registered for."""


class UnsupportedVersionError(UnknownModelError):
    """A version string of a known model that its adapter cannot serve; the message lists the ones it can."""


class InvalidPromptError(LLMError, ValueError):
    """A prompt that is empty or too long; nothing was sent to any model."""


class BenchmarkBusyError(LLMError):
    """A benchmark is already running, in this process or in another replica; nothing was started."""


class AllModelsFailedError(LLMError):
    """Every model in the fallback chain failed. ``failures`` maps model name -> reason."""

    def __init__(self, failures: dict[str, str]):
        self.failures = dict(failures)
        detail = "; ".join(f"{name}: {reason}" for name, reason in self.failures.items())
        super().__init__(f"all models failed ({detail})" if detail else "no model is configured")
