"""The /llm-bench texts: the latest run merged with live request metrics, and the trend over several runs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bot.tables import ms, pct, render_table

SUMMARY_HEADERS = ("Model", "Device", "Latency p50", "P99", "Accuracy", "Requests", "Error rate")


def summary_rows(run: dict[str, Any] | None, metrics: Sequence[dict[str, Any]]) -> list[tuple]:
    """One row per model: latency and accuracy from the benchmark run, requests and error rate live."""
    results = {r["model"]: r for r in (run or {}).get("results", [])}
    live = {m["model"]: m for m in metrics}
    rows = []
    for model in dict.fromkeys([*results, *live]):
        r, m = results.get(model, {}), live.get(model, {})
        if r and not r.get("available", True):
            latency, p99, accuracy = "unavailable", None, None
        else:
            latency, p99, accuracy = ms(r.get("latency_p50_ms")), ms(r.get("latency_p99_ms")), pct(r.get("accuracy"))
        rows.append((model, r.get("device"), latency, p99, accuracy, m.get("count", 0), pct(m.get("error_rate"))))
    return rows


def summary_text(run: dict[str, Any] | None, metrics: Sequence[dict[str, Any]], window: str) -> str:
    if run is None and not metrics:
        return "No benchmark has run yet and no requests were served. Start one with `/llm-bench run`."
    if run:
        source = (f"Benchmark run #{run['id']} ({run['trigger']}, {run['sample_size']} questions, "
                  f"{run['started_at']:%Y-%m-%d %H:%M} UTC): latency and accuracy.")
    else:
        source = "No benchmark run yet: only live figures."
    lines = [f"*Model benchmark*\n{source} Requests and error rate: live, {window}.",
             "```" + render_table(SUMMARY_HEADERS, summary_rows(run, metrics)) + "```"]
    if run:
        lines.append(f"*Recommendation:* {run['recommendation']}")
    return "\n".join(lines)


def history_text(runs: Sequence[dict[str, Any]]) -> str:
    """Oldest first: each model's accuracy and p50 latency per run."""
    if not runs:
        return "No benchmark has run yet. Start one with `/llm-bench run`."
    runs = list(reversed(runs))
    models = list(dict.fromkeys(r["model"] for run in runs for r in run["results"]))
    rows = []
    for run in runs:
        by_model = {r["model"]: r for r in run["results"]}
        rows.append((f"#{run['id']}", f"{run['started_at']:%m-%d %H:%M}", run["trigger"], run["sample_size"],
                     *(_cell(by_model.get(m)) for m in models)))
    table = render_table(("Run", "Started (UTC)", "Trigger", "N", *models), rows)
    return (f"*Benchmark trend over the last {len(runs)} run(s)* (accuracy · latency p50)\n```{table}```\n"
            f"*Latest recommendation:* {runs[-1]['recommendation']}")


def _cell(result: dict[str, Any] | None) -> str | None:
    if result is None:
        return None
    if not result.get("available", True):
        return "unavailable"
    return f"{pct(result.get('accuracy'))} · {ms(result.get('latency_p50_ms'))}"
