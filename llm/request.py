"""One request through the pipeline: its context (source, user, id), and the walk down the model chain that a plain
and a streamed answer share (llm/pipeline.py, llm/streaming.py): each call made, each model's reason for
failing."""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from llm.calls import CANARY, FALLBACK, ModelCall, failed_call, ok_call
from llm.errors import LLMError

if TYPE_CHECKING:
    from llm.adapters.base import GenerationResult, ModelAdapter

log = logging.getLogger("llm.pipeline")  # the failures are the pipeline's story


@dataclass(frozen=True)
class RequestContext:
    source: str = "api"  # slack | api | cli
    user_id: str | None = None  # hashed before it is stored
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])


@dataclass
class GuardedCall:
    """A model call let through by `BankingLLMPipeline._guarded_call`: the loaded adapter and its timeout; the
    body sets the result."""
    adapter: ModelAdapter
    timeout_s: float
    result: GenerationResult | None = None


@dataclass
class ChainWalk:
    """One request on its way down the chain (the same for a plain and a streamed answer): when it started,
    its first model, each model call made and why each failed model failed."""
    context: RequestContext
    prompt: str
    first: str
    first_version: str | None
    first_role: str
    started: float
    calls: list[ModelCall] = field(default_factory=list)
    failures: dict[str, str] = field(default_factory=dict)

    def next_role(self) -> str:
        return FALLBACK if self.calls else self.first_role

    def version_for(self, name: str) -> str | None:
        return self.first_version if name == self.first else None

    def answered(self, name: str, result: GenerationResult, call_started: float, role: str) -> None:
        self.calls.append(ok_call(name, result, ms_since(call_started), role))

    def failed(self, name: str, exc: BaseException, call_started: float, role: str) -> None:
        self.calls.append(failed_call(name, exc, ms_since(call_started), role))
        self.failures[name] = reason(exc)
        log.warning("model %s failed for request %s: %s", name, self.context.request_id, self.failures[name])


def arm(role: str) -> str:
    """The arm a served answer came from, in its extra."""
    return "canary" if role == CANARY else "served"


def ms_since(started: float) -> float:
    return (time.perf_counter() - started) * 1000


def reason(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if isinstance(exc, LLMError) else f"{type(exc).__name__}: {text}"

