"""llm-bench, whatever the front end: parse `summary | run | history [N] | compare`, and the figures as headers
and rows (the latest run merged with live request metrics; the trend over several runs; each routing arm with
95% intervals). Front ends render the rows: a code block in Slack, an Adaptive Card table in Teams."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.tables import ms, pct, render_table
from llm.routing.compare import compare

COMMAND = "llm-bench"
LIVE_WINDOW = timedelta(hours=24)
WINDOW_NAME = "last 24 hours"
HISTORY_DEFAULT, HISTORY_MAX = 5, 50
SUMMARY_HEADERS = ("Model", "Device", "Latency p50", "P99", "Accuracy", "Requests", "Error rate")


def parse(text: str) -> tuple[str, int] | None:
    """(form, N) or None when the arguments are not understood."""
    args = (text or "").split()
    if args in (["summary"], ["run"], ["compare"]):
        return args[0], 0
    if args[:1] == ["history"] and len(args) <= 2:
        if len(args) == 1:
            return "history", HISTORY_DEFAULT
        if args[1].isdigit() and 1 <= int(args[1]) <= HISTORY_MAX:
            return "history", int(args[1])
    return None


@dataclass(frozen=True)
class Figures:
    """One table with what it is about."""
    title: str
    caption: str
    headers: tuple[str, ...]
    rows: list[tuple]
    recommendation: str | None


async def latest_run(runtime: Any) -> dict | None:
    runs = await runtime.db.latest_benchmark_runs(1)
    return runs[0] if runs else None


async def live_metrics(runtime: Any) -> list[dict[str, Any]]:
    """Per model: requests and error rate from the database, with this replica's time to first words
    (ttft_p50_ms, ttft_p99_ms) and grounding figures (grounding_rejections of grounded_answers) beside them."""
    rows = await runtime.db.request_metrics(datetime.now(UTC) - LIVE_WINDOW)
    return with_stream_figures(rows, runtime.pipeline)


def with_stream_figures(rows: list[dict[str, Any]], pipeline: Any) -> list[dict[str, Any]]:
    from llm.ttft import ttft_of

    try:
        loaded = pipeline.factory.loaded()
        ttft = ttft_of(pipeline)
    except Exception:  # noqa: BLE001 - a pipeline without them (tests' stand-ins) shows the database figures
        return rows
    by_model = {r["model"]: dict(r) for r in rows}
    for name in dict.fromkeys([*by_model, *ttft.models(), *loaded]):
        figures = loaded[name].get_metrics() if name in loaded else {}
        grounding = {k: figures[k] for k in ("grounded_answers", "grounding_rejections") if k in figures}
        snapshot = ttft.snapshot(name)
        if name in by_model or snapshot["ttft_count"] or grounding.get("grounded_answers"):
            by_model.setdefault(name, {"model": name}).update(
                {k: v for k, v in snapshot.items() if k != "ttft_count"} | grounding)
    return list(by_model.values())


def stream_caption(metrics: Sequence[dict[str, Any]]) -> str:
    """"Time to first words (p50/p99, this replica): gemini 87/120 ms. Grounding rejections: gemini 1 of 20."."""
    ttft = [f"{m['model']} {ms(m['ttft_p50_ms'])}/{ms(m['ttft_p99_ms'])}" for m in metrics
            if m.get("ttft_p50_ms") is not None]
    grounded = [f"{m['model']} {m.get('grounding_rejections', 0)} of {m['grounded_answers']}" for m in metrics
                if m.get("grounded_answers")]
    parts = ([f"Time to first words (p50/p99, this replica): {', '.join(ttft)}."] if ttft else []) + (
        [f"Grounding rejections (entry shown instead): {', '.join(grounded)}."] if grounded else [])
    return " ".join(parts)


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


def summary(run: dict[str, Any] | None, metrics: Sequence[dict[str, Any]], window: str = WINDOW_NAME
            ) -> Figures | None:
    """None when there is nothing to show (no run, no requests)."""
    if run is None and not metrics:
        return None
    if run:
        source = (f"Benchmark run #{run['id']} ({run['trigger']}, {run['sample_size']} questions, "
                  f"{run['started_at']:%Y-%m-%d %H:%M} UTC): latency and accuracy.")
    else:
        source = "No benchmark run yet: only live figures."
    caption = f"{source} Requests and error rate: live, {window}. {stream_caption(metrics)}".strip()
    return Figures("Model benchmark", caption, SUMMARY_HEADERS, summary_rows(run, metrics),
                   run["recommendation"] if run else None)


async def comparison(runtime: Any) -> Figures | None:
    """Each routing arm (served, canary, escalation, shadow) over the live window; None without traffic."""
    figures = compare(await runtime.db.routing_metrics(datetime.now(UTC) - LIVE_WINDOW))
    if not figures["arms"]:
        return None

    def ci(value, interval) -> str | None:
        return None if value is None else f"{pct(value)} [{pct(interval[0])}-{pct(interval[1])}]"

    rows = [(a["arm"], a["model"], a["requests"], ms(a["latency_p50_ms"]), ms(a["latency_p99_ms"]),
             pct(a["error_rate"]), pct(a["escalation_share"]),
             None if a["cost_per_1000_usd"] is None else f"${a['cost_per_1000_usd']:.3f}",
             ci(a["agreement"], a["agreement_ci"]), ci(a["thumbs_up"], a["thumbs_up_ci"])) for a in figures["arms"]]
    return Figures("Routing arms compared", f"Live, {WINDOW_NAME}; intervals are Wilson 95%.",
                   ("Arm", "Model", "Requests", "P50", "P99", "Errors", "Escalated", "Per 1000", "Shadow agrees",
                    "Thumbs-up"), rows, " ".join(figures["summary"]))


def as_text(figures: Figures) -> str:
    """A plain-text rendering (a code block) with the caption and the sentences."""
    return "\n".join([f"*{figures.title}*: {figures.caption}", "```",
                      render_table(figures.headers, [tuple("-" if c is None else c for c in r) for r in figures.rows]),
                      "```", figures.recommendation or ""])


def history(runs: Sequence[dict[str, Any]]) -> Figures | None:
    """Oldest first: each model's accuracy and p50 latency per run; None when no run is stored."""
    if not runs:
        return None
    runs = list(reversed(runs))
    models = list(dict.fromkeys(r["model"] for run in runs for r in run["results"]))
    rows = []
    for run in runs:
        by_model = {r["model"]: r for r in run["results"]}
        rows.append((f"#{run['id']}", f"{run['started_at']:%m-%d %H:%M}", run["trigger"], run["sample_size"],
                     *(_cell(by_model.get(m)) for m in models)))
    return Figures(f"Benchmark trend over the last {len(runs)} run(s)", "accuracy · latency p50",
                   ("Run", "Started (UTC)", "Trigger", "N", *models), rows, runs[-1]["recommendation"])


def _cell(result: dict[str, Any] | None) -> str | None:
    if result is None:
        return None
    if not result.get("available", True):
        return "unavailable"
    return f"{pct(result.get('accuracy'))} · {ms(result.get('latency_p50_ms'))}"


async def dialogue(runtime: Any) -> Figures | None:
    """The dialogue's figures per model (bot/conversation/analytics.py) over the live window; None without turns."""
    from bot.conversation.analytics import dialogue_analytics

    return dialogue_figures(await dialogue_analytics(runtime.db, datetime.now(UTC) - LIVE_WINDOW))


def dialogue_figures(stats: dict[str, dict[str, Any]]) -> Figures | None:
    if not stats.get("all", {}).get("turns"):
        return None

    def handoffs(by_reason: dict[str, float | None]) -> str | None:
        return ", ".join(f"{reason} {pct(rate)}" for reason, rate in by_reason.items()) or None

    def thumbs(s: dict[str, Any]) -> str | None:
        low, high = s["thumbs_up_ci95"] or (None, None)
        return None if s["thumbs_up"] is None else f"{pct(s['thumbs_up'])} [{pct(low)}-{pct(high)}] n={s['thumbs']}"

    rows = [(model, s["turns"], pct(s["containment"]), pct(s["handoff_rate"]), handoffs(s["handoffs_by_reason"]),
             pct(s["clarification_rate"]), pct(s["clarified_by_click"]), thumbs(s),
             ", ".join(s["most_disliked"]) or None) for model, s in stats.items()]
    return Figures("Dialogue", f"Live, {WINDOW_NAME}; containment: turns with no hand-off; thumbs-up with its "
                   "Wilson 95% interval.", ("Model", "Turns", "Contained", "Hand-offs", "By reason", "Clarified",
                                            "By a click", "Thumbs-up", "Most disliked"), rows, None)
