"""The pipeline, streamed: `generate_stream(pipeline, prompt, context)` yields the answer's text deltas as the model
writes them, then the whole GenerationResult.

It walks the same chain as `BankingLLMPipeline.generate` (canary or active model, then FALLBACK_ORDER) with the same
breakers, budgets, timeouts, calibrated confidence, call records and shadow calls, reusing the pipeline's own
helpers. Fallback to the next model is possible until the first delta has gone out; after that a failure ends the
answer with a short apology line, is recorded, and raises `AnswerInterruptedError` carrying what was shown.
Escalation is not done for streamed answers: the first model's words are already on screen.

Time to first token (what the customer waited before the first words, every model tried included) is kept in
the result's `extra["ttft_ms"]` and per model in `llm.ttft.ttft_of(pipeline)`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import aclosing
from dataclasses import replace
from typing import TYPE_CHECKING

from llm.adapters.base import GenerationResult
from llm.calls import CANARY, FALLBACK, ModelCall, failed_call, ok_call
from llm.errors import AllModelsFailedError, BudgetExhaustedError, CircuitOpenError, LLMError, ModelTimeoutError
from llm.pipeline import RequestContext, _reason
from llm.ttft import ttft_of

if TYPE_CHECKING:
    from llm.pipeline import BankingLLMPipeline

log = logging.getLogger(__name__)

APOLOGY_LINE = "\n\nSorry, something went wrong while I was writing this answer. Please ask again."


class AnswerInterruptedError(LLMError):
    """The model failed after part of its answer was shown; the apology line has been sent after it."""

    def __init__(self, shown: str, model: str, reason: str, request_id: str):
        super().__init__(f"{model} failed after the answer had started: {reason}")
        self.shown, self.model, self.request_id = shown, model, request_id


async def generate_stream(pipeline: BankingLLMPipeline, prompt: str,
                          context: RequestContext | None = None) -> AsyncIterator[str | GenerationResult]:
    context = context or RequestContext()
    prompt = pipeline._validate(prompt)
    failures: dict[str, str] = {}
    calls: list[ModelCall] = []
    started = time.perf_counter()
    first, first_version, first_role = pipeline.first_model(context)
    try:
        for name in pipeline.chain(first):
            role = FALLBACK if calls else first_role
            call_started = time.perf_counter()
            shown: list[str] = []
            ttft_ms: float | None = None
            result: GenerationResult | None = None
            try:
                async with aclosing(_model_stream(pipeline, name, prompt,
                                                  first_version if name == first else None)) as stream:
                    async for item in stream:
                        if isinstance(item, GenerationResult):
                            result = item
                            break
                        if ttft_ms is None:
                            ttft_ms = _ms_since(started)
                        shown.append(item)
                        yield item
            except Exception as exc:  # noqa: BLE001 - before the first delta every failure moves down the chain
                calls.append(failed_call(name, exc, _ms_since(call_started), role))
                failures[name] = _reason(exc)
                log.warning("model %s failed for request %s: %s", name, context.request_id, failures[name])
                if not shown:
                    continue
                yield APOLOGY_LINE  # after the first delta: the answer ends here, and says so
                error = f"{name} failed after the answer had started: {failures[name]}"
                pipeline._record(context, prompt, calls, error=error, latency_ms=_ms_since(started))
                ttft_of(pipeline).record(name, ttft_ms or 0.0)
                raise AnswerInterruptedError("".join(shown) + APOLOGY_LINE, name, failures[name],
                                             context.request_id) from exc
            assert result is not None
            calls.append(ok_call(name, result, _ms_since(call_started), role))
            fallback_from = next(iter(failures), None)
            pipeline.fallbacks += fallback_from is not None
            ttft_ms = ttft_ms if ttft_ms is not None else _ms_since(started)
            extra = result.extra | {"arm": "canary" if role == CANARY else "served", "ttft_ms": round(ttft_ms, 3),
                                    "model_ttft_ms": result.extra.get("ttft_ms")}
            result = replace(result, extra=extra, fallback_from=fallback_from, request_id=context.request_id,
                             latency_ms=_ms_since(started), model_latency_ms=result.latency_ms)
            ttft_of(pipeline).record(result.model, ttft_ms)
            row = pipeline._record(context, prompt, calls, result=result, store=False)
            if not pipeline._start_shadow(prompt, row, context):
                pipeline.store.request_log.add(row)
            yield result
            return
        error = AllModelsFailedError(failures)
        pipeline._record(context, prompt, calls, error=str(error), latency_ms=_ms_since(started))
        raise error
    finally:
        pipeline._count_request()


async def _model_stream(pipeline: BankingLLMPipeline, name: str, prompt: str,
                        version: str | None) -> AsyncIterator[str | GenerationResult]:
    """One model's stream, as `BankingLLMPipeline._call` makes one call: breaker, load timeout, budget, the
    model's timeout over the whole stream, and the confidence calibrated."""
    breaker = pipeline.breaker(name)
    if not breaker.allows_call():
        raise CircuitOpenError(f"circuit open after {breaker.consecutive_failures} failures; "
                               f"retry in {breaker.retry_in_s():.0f}s")
    reserved: float | None = None
    result: GenerationResult | None = None
    try:
        load_timeout = pipeline.options.timeouts.get(name, pipeline.options.timeout_s)
        try:
            async with asyncio.timeout(load_timeout):
                adapter = await pipeline.factory.get(version or pipeline.switcher.version_of(name))
        except TimeoutError:
            raise ModelTimeoutError(f"still loading after {load_timeout:g}s") from None
        if adapter.estimated_call_cost_usd is not None:
            reserved = await pipeline.budgets.reserve(name, adapter.estimated_call_cost_usd)
            if reserved is None:
                raise BudgetExhaustedError(pipeline.budgets.exhausted(name) or "daily budget spent")
        timeout = pipeline._timeout(name, adapter)
        deadline = asyncio.get_running_loop().time() + timeout
        async with aclosing(adapter.stream(prompt)) as stream:
            while True:
                try:
                    async with asyncio.timeout_at(deadline):  # no yield inside: the consumer's time is its own
                        item = await anext(stream)
                except TimeoutError:
                    raise ModelTimeoutError(f"timed out after {timeout:g}s") from None
                if isinstance(item, GenerationResult):
                    result = item
                    break
                yield item
    except Exception as exc:
        if reserved is not None:
            await pipeline.budgets.settle(name, reserved, 0.0)
        if getattr(exc, "model_fault", True):
            breaker.record_failure()
        else:
            breaker.record_neutral()
        raise
    if reserved is not None:
        await pipeline.budgets.settle(name, reserved, result.cost_usd)
    breaker.record_success()
    yield pipeline.calibrations.apply(result)


async def collect(stream: AsyncIterator[str | GenerationResult]) -> tuple[list[str], GenerationResult]:
    """Every delta and the result of a stream (tests, benchmarks, callers that cannot stream)."""
    deltas: list[str] = []
    async for item in stream:
        if isinstance(item, GenerationResult):
            return deltas, item
        deltas.append(item)
    raise RuntimeError("the stream ended without a result")


def _ms_since(started: float) -> float:
    return (time.perf_counter() - started) * 1000
