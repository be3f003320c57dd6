"""What `GET /benchmark/summary` shows without the admin token: the figures (latency, accuracy, requests, error
rates, the recommendation), never failure reasons, URLs, hosts or costs. With the token it shows everything."""

from __future__ import annotations

from typing import Any

RESULT_FIELDS = ("model", "model_version", "device", "available", "n", "latency_p50_ms", "latency_p99_ms",
                 "accuracy", "errors", "queue_p50_ms", "prompt_tokens", "completion_tokens")
RUN_FIELDS = ("id", "trigger", "sample_size", "started_at", "finished_at", "recommendation")
LIVE_FIELDS = ("model", "version", "device", "requests", "errors", "error_rate", "latency_avg_ms",
               "latency_p50_ms", "latency_p99_ms", "avg_confidence", "prompt_tokens", "completion_tokens")
RECENT_FIELDS = ("model", "count", "failed_requests", "calls", "failed_calls", "error_rate", "avg_latency_ms",
                 "avg_model_latency_ms", "latency_p50_ms", "latency_p99_ms", "prompt_tokens", "completion_tokens")


def _only(data: dict[str, Any], fields: tuple[str, ...]) -> dict[str, Any]:
    return {key: data[key] for key in fields if key in data}


def public_summary(summary: dict[str, Any]) -> dict[str, Any]:
    """The summary with only the fields listed above (an allow-list: a field added later stays private)."""
    run = summary.get("latest_run")
    return {
        "active_model": summary["active_model"],
        "latest_run": None if run is None else _only(run, RUN_FIELDS) | {
            "results": [_only(result, RESULT_FIELDS) for result in run.get("results", [])]},
        "recommendation": summary["recommendation"],
        "live": {name: _only(figures, LIVE_FIELDS) for name, figures in summary["live"].items()},
        "recent": [_only(figures, RECENT_FIELDS) for figures in summary["recent"]],
    }
