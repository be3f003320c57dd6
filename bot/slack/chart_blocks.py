"""The latency-against-accuracy chart as a Block Kit `data_visualization` block (June 2026): a bar per model,
its height the accuracy and its label the p50 latency. Workspaces that refuse the block get the PNG instead
(bot/slack/charts.py).

Slack's limits: title and axis labels at most 50 characters, category and series labels at most 20, at most 20
categories and 6 series, one value per category in each series.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bot.tables import ms

TITLE_CHARS, LABEL_CHARS, MAX_CATEGORIES = 50, 20, 20


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def points(results: Sequence[dict[str, Any]]) -> list[tuple[str, float, float]]:
    """(model, latency p50 ms, accuracy %) of each model with both figures, fastest first."""
    found = [(r["model"], r["latency_p50_ms"], round(r["accuracy"] * 100, 1)) for r in results
             if r.get("available", True) and r.get("latency_p50_ms") and r.get("accuracy") is not None]
    return sorted(found, key=lambda p: p[1])[:MAX_CATEGORIES]


def latency_accuracy_block(results: Sequence[dict[str, Any]], title: str) -> dict[str, Any] | None:
    """None when no model has both figures."""
    found = points(results)
    if not found:
        return None
    labels = [_clip(f"{model} · {ms(latency)}", LABEL_CHARS) for model, latency, _ in found]
    return {"type": "data_visualization", "title": _clip(title, TITLE_CHARS), "chart": {
        "type": "bar",
        "series": [{"name": "Accuracy (%)", "data": [{"label": label, "value": accuracy}
                                                     for label, (_, _, accuracy) in zip(labels, found, strict=True)]}],
        "axis_config": {"categories": labels, "x_label": "Model · latency p50 (fastest first)",
                        "y_label": "Accuracy (%)"}}}


def chart_text(results: Sequence[dict[str, Any]]) -> str:
    """The chart's figures as text: the message's fallback for clients that cannot draw it."""
    return "; ".join(f"{model}: {accuracy:g}% at {ms(latency)}" for model, latency, accuracy in points(results))
