"""Errors the pipeline and its adapters raise. Each carries a reason fit to show an operator."""

from __future__ import annotations


class LLMError(Exception):
    """Base of every error raised by the llm package."""


class ModelUnavailableError(LLMError):
    """A model cannot serve at all (missing checkpoint, no API key, missing GPU package)."""


class ModelResponseError(LLMError):
    """A model answered, but the answer could not be used (malformed output, bad status)."""


class UnknownModelError(LLMError, ValueError):
    """A model name or version string that no adapter is registered for."""


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
