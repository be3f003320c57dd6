"""Each routing arm side by side, with statistics: from the per-arm figures of the call records
(storage/routing_metrics.py) to rows with Wilson 95% intervals and plain sentences on what is significant."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from llm.routing.wilson import difference_sentence, wilson
from llm.stats import percentile

ARM_NAMES = {"primary": "served", "canary": "canary", "escalation": "escalation", "shadow": "shadow",
             "fallback": "fallback"}


def arm_rows(metrics: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for m in metrics:
        calls, latencies = m["calls"], m["latencies_ms"]
        row = {
            "arm": ARM_NAMES.get(m["arm"], m["arm"]), "model": m["model"], "requests": calls,
            "latency_p50_ms": percentile(latencies, 50), "latency_p99_ms": percentile(latencies, 99),
            "error_rate": m["failed"] / calls if calls else None,
            "escalation_share": m["escalated"] / calls if calls and m["arm"] in ("primary", "canary") else None,
            "cost_per_1000_usd": 1000 * m["cost_usd"] / calls if calls and m["cost_usd"] is not None else None,
            "agreement": None, "agreement_ci": None, "compared": m.get("compared"),
            "thumbs_up": None, "thumbs_up_ci": None, "feedback": m.get("feedback", 0),
        }
        if m.get("compared"):
            row["agreement"] = m["agree"] / m["compared"]
            row["agreement_ci"] = wilson(m["agree"], m["compared"])
        if m.get("feedback"):
            row["thumbs_up"] = m["positive"] / m["feedback"]
            row["thumbs_up_ci"] = wilson(m["positive"], m["feedback"])
        rows.append(row)
    return rows


def sentences(metrics: Sequence[dict[str, Any]]) -> list[str]:
    """Plain words: canary vs served (error rate; thumbs-up where there is feedback), shadow agreement."""
    served = _total(metrics, "primary")
    canary = _total(metrics, "canary")
    lines = []
    if canary["calls"]:
        lines.append(difference_sentence("Error rate", "canary", canary["failed"], canary["calls"], "served",
                                         served["failed"], served["calls"]))
        if canary["feedback"] and served["feedback"]:
            lines.append(difference_sentence("Thumbs-up", "canary", canary["positive"], canary["feedback"],
                                             "served", served["positive"], served["feedback"]))
        if canary["calls"] and served["calls"]:
            lines.append(difference_sentence("Escalated", "canary", canary["escalated"], canary["calls"], "served",
                                             served["escalated"], served["calls"]))
    for m in metrics:
        if m["arm"] == "shadow" and m.get("compared"):
            low, high = wilson(m["agree"], m["compared"])
            lines.append(f"Shadow {m['model']} agreed with the answer shown on {m['agree'] / m['compared']:.1%} of "
                         f"{m['compared']} questions (95% interval {low:.1%}-{high:.1%}).")
    if not lines:
        lines.append("Only the served arm has traffic: nothing to compare yet.")
    return lines


def _total(metrics: Sequence[dict[str, Any]], arm: str) -> dict[str, int]:
    keys = ("calls", "failed", "escalated", "feedback", "positive")
    return {k: sum(int(m.get(k) or 0) for m in metrics if m["arm"] == arm) for k in keys}


def compare(metrics: Sequence[dict[str, Any]]) -> dict[str, Any]:
    return {"arms": arm_rows(metrics), "summary": sentences(metrics)}
