"""Plain-text tables for the terminal and for Slack code blocks."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def render_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[str(h) for h in headers]] + [[_cell(v) for v in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _cell(value: Any) -> str:
    return "-" if value is None else str(value)


def ms(value: float | None) -> str | None:
    if value is None:
        return None
    return f"{value:.1f} ms" if value < 1000 else f"{value / 1000:.2f} s"


def pct(value: float | None) -> str | None:
    return None if value is None else f"{value * 100:.1f}%"


BENCHMARK_HEADERS = ("Model", "Device", "Latency", "P99", "Accuracy", "Tokens", "Errors")


def benchmark_table(results: Sequence[dict[str, Any]]) -> str:
    """The design's table of one benchmark run; an unavailable model shows its reason."""
    rows = []
    for r in results:
        if not r.get("available", True):
            rows.append((r["model"], r.get("device"), f"unavailable: {_short(r.get('reason'))}", None, None, None,
                         r.get("errors")))
            continue
        tokens = (r.get("prompt_tokens") or 0) + (r.get("completion_tokens") or 0)
        rows.append((r["model"], r.get("device"), ms(r.get("latency_p50_ms")), ms(r.get("latency_p99_ms")),
                     pct(r.get("accuracy")), tokens, r.get("errors")))
    return render_table(BENCHMARK_HEADERS, rows)


def _short(reason: str | None, limit: int = 60) -> str:
    text = (reason or "unknown").splitlines()[0]
    return text if len(text) <= limit else text[: limit - 1] + "…"
