"""Offline evaluation of a whole routing policy on a labelled set: the serving model answers every question,
the escalation model those below the threshold (out-of-scope ones only if the policy says so), and the route is
scored as the user would see it: accuracy, escalation share, cost per 1,000 questions, latency p50/p99 (the
escalated questions wait for both calls), plus each model's own figures on the questions it was asked."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from llm.adapters.base import OUT_OF_SCOPE
from llm.evaluation import EvalReport
from llm.priority import background_work
from llm.routing.reliability import reliability_figures
from llm.stats import percentile

if TYPE_CHECKING:
    from llm.adapters.base import GenerationResult, ModelAdapter
    from llm.banking77 import Example
    from llm.routing.policy import Escalation


async def _ask(adapter: ModelAdapter, text: str, timeout_s: float,
               calibrate: Callable[[GenerationResult], GenerationResult] | None) -> GenerationResult | Exception:
    try:
        with background_work():
            result = await asyncio.wait_for(adapter.generate(text, record=False), timeout_s)
    except Exception as exc:  # noqa: BLE001 - an error is a wrong answer
        return exc
    return calibrate(result) if calibrate else result


async def answer_each(adapter: ModelAdapter, examples: Sequence[Example], *, concurrency: int = 16,
                      timeout_s: float = 60.0, calibrate: Callable[[GenerationResult], GenerationResult] | None = None,
                      progress: Callable[[int], None] | None = None) -> list[GenerationResult | Exception]:
    """The adapter's answer (or error) to each example, in the examples' order, so that two models' answers can
    be paired question by question (choosing a threshold needs that)."""
    gate = asyncio.Semaphore(concurrency)

    async def one(example: Example) -> GenerationResult | Exception:
        async with gate:
            outcome = await _ask(adapter, example.text, timeout_s, calibrate)
        if progress:
            progress(1)
        return outcome

    return list(await asyncio.gather(*(one(e) for e in examples)))


def _note(report: EvalReport, example: Example, outcome: GenerationResult | Exception) -> None:
    if isinstance(outcome, Exception):
        report.errors += 1
        report.first_error = report.first_error or f"{type(outcome).__name__}: {outcome}"
        report.pairs.append((example.intent, None))
        return
    report.correct += outcome.intent == example.intent
    report.pairs.append((example.intent, outcome.intent))
    report.latencies_ms.append(outcome.latency_ms)
    report.prompt_tokens += outcome.prompt_tokens
    report.completion_tokens += outcome.completion_tokens
    report.cost_usd += outcome.cost_usd or 0.0
    report.confidences.append(outcome.confidence)
    report.answered_correct.append(outcome.intent == example.intent)


async def evaluate_route(first: ModelAdapter, examples: Sequence[Example], rule: Escalation | None = None,
                         escalation: ModelAdapter | None = None, *, concurrency: int = 8, timeout_s: float = 60.0,
                         calibrate: Callable[[GenerationResult], GenerationResult] | None = None,
                         progress: Callable[[int], None] | None = None) -> dict[str, Any]:
    gate = asyncio.Semaphore(concurrency)
    reports = {first.name: EvalReport(first.name, first.version, first.device, 0)}
    if escalation is not None:
        reports[escalation.name] = EvalReport(escalation.name, escalation.version, escalation.device, 0)
    latencies: list[float] = []
    correct, escalated, cost, priced = 0, 0, 0.0, False
    shown_conf: list[float] = []
    shown_ok: list[bool] = []

    async def route(example: Example) -> None:
        nonlocal correct, escalated, cost, priced
        async with gate:
            answer = await _ask(first, example.text, timeout_s, calibrate)
            _note(reports[first.name], example, answer)
            reports[first.name].n += 1
            waited = answer.latency_ms if not isinstance(answer, Exception) else timeout_s * 1000
            unsure = isinstance(answer, Exception) or answer.confidence < rule.threshold if rule else False
            if unsure and not isinstance(answer, Exception) and answer.intent == OUT_OF_SCOPE \
                    and not rule.out_of_scope:
                unsure = False
            if unsure and escalation is not None:
                escalated += 1
                second = await _ask(escalation, example.text, timeout_s, calibrate)
                _note(reports[escalation.name], example, second)
                reports[escalation.name].n += 1
                if not isinstance(second, Exception):
                    waited += second.latency_ms
                    cost += second.cost_usd or 0.0
                    priced |= second.cost_usd is not None
                    answer = second
                else:
                    waited += timeout_s * 1000
            if not isinstance(answer, Exception):
                correct += answer.intent == example.intent
                shown_conf.append(answer.confidence)
                shown_ok.append(answer.intent == example.intent)
                if answer.model == first.name:
                    cost += answer.cost_usd or 0.0
                    priced |= answer.cost_usd is not None
            latencies.append(waited)
        if progress:
            progress(1)

    await asyncio.gather(*(route(e) for e in examples))
    n = len(examples)
    return {
        "n": n, "serving": first.name, "escalation": escalation.name if escalation else None,
        "threshold": rule.threshold if rule else None, "accuracy": correct / n if n else None,
        "escalation_share": escalated / n if n else None,
        "cost_per_1000_usd": 1000 * cost / n if n and priced else None,
        "latency_p50_ms": percentile(latencies, 50), "latency_p99_ms": percentile(latencies, 99),
        "shown": reliability_figures(shown_conf, shown_ok),
        "models": {name: report.summary() for name, report in reports.items()},
    }
