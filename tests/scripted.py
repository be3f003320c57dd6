"""A scripted model for pipeline tests: answers are queued with enqueue(), in order."""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass

from llm.adapters.base import GenerationResult, ModelAdapter


@dataclass
class Scripted:
    text: str = "scripted answer"
    intent: str = "card_arrival"
    confidence: float = 0.9
    delay_s: float = 0.0  # sleep before answering (a slow or hanging model)
    error: Exception | None = None  # raise instead of answering
    gate: asyncio.Event | None = None  # wait for this event before answering
    cost_usd: float | None = None  # what the call cost (a paid model)
    extra: dict | None = None  # the result's adapter-specific figures, e.g. {"queue_ms": 5.0}
    latency_ms: float | None = None  # the model's own time as it reports it (default: delay_s)


class ScriptedAdapter(ModelAdapter):
    device = "cpu"
    default_version = "scripted_0.0.0"
    default_timeout_s = 5.0

    def __init__(self, name: str = "scripted", *, default: Scripted | None = None, load_error: Exception | None = None):
        super().__init__(f"{name}_0.0.0")
        self.name = name
        self.queue: deque[Scripted] = deque()
        self.default = default  # used when the queue is empty; None means "fail"
        self.load_error = load_error
        self.loads = 0
        self.prompts: list[str] = []

    def enqueue(self, *items: Scripted | str) -> ScriptedAdapter:
        for item in items:
            self.queue.append(Scripted(text=item) if isinstance(item, str) else item)
        return self

    async def load(self) -> None:
        self.loads += 1
        await asyncio.sleep(0.01)  # give concurrent callers a chance to race
        if self.load_error:
            raise self.load_error

    async def _generate(self, prompt: str) -> GenerationResult:
        self.prompts.append(prompt)
        if self.queue:
            step = self.queue.popleft()
        elif self.default is not None:
            step = self.default
        else:
            raise RuntimeError(f"{self.name}: no scripted answer queued")
        if step.gate is not None:
            await step.gate.wait()
        if step.delay_s:
            await asyncio.sleep(step.delay_s)
        if step.error is not None:
            raise step.error
        return GenerationResult(
            text=step.text, intent=step.intent,
            latency_ms=step.delay_s * 1000 if step.latency_ms is None else step.latency_ms,
            prompt_tokens=len(prompt.split()), completion_tokens=len(step.text.split()), confidence=step.confidence,
            model_version=self.version, device=self.device, model=self.name, cost_usd=step.cost_usd,
            extra=dict(step.extra or {}),
        )


def builders(*adapters: ScriptedAdapter):
    """Factory builders that hand out the given instances (counting constructions)."""
    return {adapter.name: (lambda a: (lambda settings, version: a))(adapter) for adapter in adapters}
