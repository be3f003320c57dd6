"""CHARTS=on: a PNG of latency against accuracy per model, drawn with matplotlib off the event loop."""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any


def latency_accuracy_png(results: Sequence[dict[str, Any]], title: str) -> bytes | None:
    """Scatter of p50 latency (log scale) against accuracy; None when no model has both figures. CPU-bound."""
    points = [(r["model"], r["latency_p50_ms"], r["accuracy"] * 100) for r in results
              if r.get("available", True) and r.get("latency_p50_ms") and r.get("accuracy") is not None]
    if not points:
        return None
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure  # no pyplot: no global state, safe in a worker thread

    figure = Figure(figsize=(6, 4), dpi=100)
    axes = figure.subplots()
    for model, latency, accuracy in points:
        axes.scatter(latency, accuracy, s=60)
        axes.annotate(model, (latency, accuracy), textcoords="offset points", xytext=(6, 6))
    axes.set_xscale("log")
    axes.set_xlabel("Latency p50 (ms, log scale)")
    axes.set_ylabel("Accuracy (%)")
    axes.set_title(title)
    axes.grid(True, alpha=0.3)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()
