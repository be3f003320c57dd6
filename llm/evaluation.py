"""Ask one model a labelled set of questions: accuracy, macro-F1, latency, throughput, and how far its
confidence can be trusted (ECE, risk-coverage, AURC: llm/routing/reliability.py)."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from llm.priority import background_work
from llm.routing.reliability import reliability_figures
from llm.stats import percentile

if TYPE_CHECKING:
    from llm.adapters.base import GenerationResult, ModelAdapter
    from llm.banking77 import Example
    from llm.budget import SpendGuard


@dataclass
class EvalReport:
    model: str
    model_version: str
    device: str
    n: int
    correct: int = 0
    errors: int = 0
    not_asked: int = 0  # refused by the spending guard (counted in n, not in accuracy)
    first_error: str = ""
    latencies_ms: list[float] = field(default_factory=list, repr=False)  # the model's time, queueing excluded
    queue_ms: list[float] = field(default_factory=list, repr=False)  # waiting behind live requests
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    wall_s: float = 0.0
    pairs: list[tuple[str, str | None]] = field(default_factory=list, repr=False)  # (gold, predicted)
    confidences: list[float] = field(default_factory=list, repr=False)  # calibrated, one per answer
    answered_correct: list[bool] = field(default_factory=list, repr=False)  # beside each confidence
    ttft_ms: list[float] = field(default_factory=list, repr=False)  # first words: the whole answer when not streamed
    grounded: int = 0  # LLM answers the faithfulness guard judged (ANSWER_STYLE=grounded)
    grounding_rejections: int = 0  # of those, answers that failed it (the entry was shown)

    @property
    def asked(self) -> int:
        return self.n - self.not_asked

    @property
    def accuracy(self) -> float | None:
        return self.correct / self.asked if self.asked else None

    @property
    def throughput_per_s(self) -> float | None:
        return self.n / self.wall_s if self.wall_s else None

    @property
    def macro_f1(self) -> float | None:
        """Mean F1 over the gold labels; an error counts as a wrong prediction."""
        if not self.pairs:
            return None
        tp, fp, fn = Counter(), Counter(), Counter()
        for gold, predicted in self.pairs:
            if gold == predicted:
                tp[gold] += 1
            else:
                fn[gold] += 1
                if predicted is not None:
                    fp[predicted] += 1
        scores = []
        for label in {gold for gold, _ in self.pairs}:
            denominator = 2 * tp[label] + fp[label] + fn[label]
            scores.append(2 * tp[label] / denominator if denominator else 0.0)
        return sum(scores) / len(scores)

    def summary(self) -> dict:
        return {
            "model": self.model, "model_version": self.model_version, "device": self.device, "n": self.n,
            "accuracy": self.accuracy, "macro_f1": self.macro_f1, "errors": self.errors,
            "latency_p50_ms": percentile(self.latencies_ms, 50), "latency_p99_ms": percentile(self.latencies_ms, 99),
            "queue_p50_ms": percentile(self.queue_ms, 50), "not_asked": self.not_asked,
            "throughput_per_s": self.throughput_per_s, "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens, "cost_usd": self.cost_usd, "wall_s": self.wall_s,
            "first_error": self.first_error,
            "ttft_p50_ms": percentile(self.ttft_ms, 50), "ttft_p99_ms": percentile(self.ttft_ms, 99),
            "grounded_answers": self.grounded, "grounding_rejections": self.grounding_rejections,
            "grounding_rejection_rate": self.grounding_rejections / self.grounded if self.grounded else None,
        } | reliability_figures(self.confidences, self.answered_correct)


async def evaluate(adapter: ModelAdapter, examples: Sequence[Example], *, concurrency: int = 8,
                   timeout_s: float = 60.0, progress: Callable[[int], None] | None = None,
                   spend: SpendGuard | None = None,
                   calibrate: Callable[[GenerationResult], GenerationResult] | None = None) -> EvalReport:
    """Each example goes straight to the adapter (no fallback), at most `concurrency` at a time, as background
    work: where a model queues (custom's batcher), live requests go first, and the time spent waiting behind
    them (`extra["queue_ms"]`) is reported apart from the model's latency. `spend` refuses paid calls past a
    budget (those examples are not asked). `calibrate` maps each answer's confidence (an LLM's confidence map)."""
    report = EvalReport(adapter.name, adapter.version, adapter.device, len(examples))
    gate = asyncio.Semaphore(concurrency)

    async def ask(example: Example) -> None:
        async with gate:
            reserved = spend.estimate_usd if spend else 0.0
            if spend is not None and not spend.reserve():
                report.not_asked += 1
                if progress:
                    progress(1)
                return
            cost = 0.0
            try:
                with background_work():
                    result = await asyncio.wait_for(adapter.generate(example.text, record=False), timeout_s)
            except Exception as exc:  # noqa: BLE001 - an error is a wrong answer, counted apart
                report.errors += 1
                report.first_error = report.first_error or f"{type(exc).__name__}: {exc}"
                report.pairs.append((example.intent, None))
            else:
                if calibrate is not None:
                    result = calibrate(result)
                cost = result.cost_usd or 0.0
                report.confidences.append(result.confidence)
                report.answered_correct.append(result.intent == example.intent)
                queued = float(result.extra.get("queue_ms") or 0.0)
                report.queue_ms.append(queued)
                report.latencies_ms.append(max(0.0, result.latency_ms - queued))
                report.ttft_ms.append(float(result.extra.get("ttft_ms") or max(0.0, result.latency_ms - queued)))
                if result.extra.get("grounding") in ("passed", "rejected"):
                    report.grounded += 1
                    report.grounding_rejections += result.extra["grounding"] == "rejected"
                report.correct += result.intent == example.intent
                report.pairs.append((example.intent, result.intent))
                report.prompt_tokens += result.prompt_tokens
                report.completion_tokens += result.completion_tokens
                report.cost_usd += result.cost_usd or 0.0
            finally:
                if spend is not None:
                    spend.settle(reserved, cost)
        if progress:
            progress(1)

    started = time.perf_counter()
    await asyncio.gather(*(ask(e) for e in examples))
    report.wall_s = time.perf_counter() - started
    return report
