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
from llm.errors import LLMError, ModelTimeoutError
from llm.request import RequestContext, arm, ms_since
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
    request = pipeline._begin(prompt, context)
    try:
        for name in pipeline.chain(request.first):
            role = request.next_role()
            call_started = time.perf_counter()
            shown: list[str] = []
            ttft_ms: float | None = None
            result: GenerationResult | None = None
            try:
                async with aclosing(_model_stream(pipeline, name, request.prompt,
                                                  request.version_for(name))) as stream:
                    async for item in stream:
                        if isinstance(item, GenerationResult):
                            result = item
                            break
                        if ttft_ms is None:
                            ttft_ms = ms_since(request.started)
                        shown.append(item)
                        yield item
            except Exception as exc:  # noqa: BLE001 - before the first delta every failure moves down the chain
                request.failed(name, exc, call_started, role)
                if not shown:
                    continue
                yield APOLOGY_LINE  # after the first delta: the answer ends here, and says so
                reason = request.failures[name]
                pipeline._record_failure(request, f"{name} failed after the answer had started: {reason}")
                ttft_of(pipeline).record(name, ttft_ms or 0.0)
                raise AnswerInterruptedError("".join(shown) + APOLOGY_LINE, name, reason,
                                             request.context.request_id) from exc
            assert result is not None
            request.answered(name, result, call_started, role)
            ttft_ms = ttft_ms if ttft_ms is not None else ms_since(request.started)
            result = replace(result, extra=result.extra | {"arm": arm(role), "ttft_ms": round(ttft_ms, 3),
                                                           "model_ttft_ms": result.extra.get("ttft_ms")})
            ttft_of(pipeline).record(result.model, ttft_ms)
            yield pipeline._serve(request, result)
            return
        raise pipeline._all_failed(request)
    finally:
        pipeline._count_request()


async def _model_stream(pipeline: BankingLLMPipeline, name: str, prompt: str,
                        version: str | None) -> AsyncIterator[str | GenerationResult]:
    """One model's stream, guarded as `BankingLLMPipeline._call` guards one call, with the model's timeout over
    the whole stream, and the confidence calibrated."""
    async with pipeline._guarded_call(name, version) as call:
        deadline = asyncio.get_running_loop().time() + call.timeout_s
        async with aclosing(call.adapter.stream(prompt)) as stream:
            while True:
                try:
                    async with asyncio.timeout_at(deadline):  # no yield inside: the consumer's time is its own
                        item = await anext(stream)
                except TimeoutError:
                    raise ModelTimeoutError(f"timed out after {call.timeout_s:g}s") from None
                if isinstance(item, GenerationResult):
                    call.result = item
                    break
                yield item
    yield pipeline.calibrations.apply(call.result)


async def collect(stream: AsyncIterator[str | GenerationResult]) -> tuple[list[str], GenerationResult]:
    """Every delta and the result of a stream (tests, benchmarks, callers that cannot stream)."""
    deltas: list[str] = []
    async for item in stream:
        if isinstance(item, GenerationResult):
            return deltas, item
        deltas.append(item)
    raise RuntimeError("the stream ended without a result")
