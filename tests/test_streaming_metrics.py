"""TTFT p50/p99 per model and grounding rejections: in /llm-bench's caption, in Prometheus and in `bankbot eval`."""

from __future__ import annotations

from bot.conversation.benchmarks import stream_caption, summary
from llm.banking77 import Example
from llm.evaluation import evaluate
from llm.ttft import TTFT
from tests.scripted import Scripted, ScriptedAdapter


def test_the_summary_caption_shows_ttft_and_grounding_rejections():
    metrics = [{"model": "gemini", "count": 20, "error_rate": 0.0, "ttft_p50_ms": 87.0, "ttft_p99_ms": 120.0,
                "grounded_answers": 20, "grounding_rejections": 1},
               {"model": "custom", "count": 3, "error_rate": 0.0}]
    caption = stream_caption(metrics)
    assert caption == ("Time to first words (p50/p99, this replica): gemini 87.0 ms/120.0 ms. "
                       "Grounding rejections (entry shown instead): gemini 1 of 20.")
    assert caption in summary(None, metrics).caption


def test_ttft_percentiles_per_model():
    ttft = TTFT()
    for value in range(1, 101):
        ttft.record("gemini", float(value))
    figures = ttft.snapshot("gemini")
    assert figures["ttft_count"] == 100 and figures["ttft_p50_ms"] == 50.5 and round(figures["ttft_p99_ms"], 2) == 99.01
    assert ttft.snapshot("custom")["ttft_p50_ms"] is None


async def test_eval_reports_the_grounding_rejection_rate():
    model = ScriptedAdapter("gemini").enqueue(
        Scripted("ok", "card_arrival", extra={"grounding": "passed"}),
        Scripted("entry", "card_arrival", extra={"grounding": "rejected", "grounding_reason": "invented number 5"}),
        Scripted("ok", "card_arrival", extra={"grounding": "passed"}),
        Scripted("ok", "card_arrival", extra={"grounding": "passed"}))
    report = await evaluate(model, [Example("where is my card", "card_arrival")] * 4, concurrency=1)
    figures = report.summary()
    assert (figures["grounded_answers"], figures["grounding_rejections"]) == (4, 1)
    assert figures["grounding_rejection_rate"] == 0.25 and figures["ttft_p50_ms"] is not None
