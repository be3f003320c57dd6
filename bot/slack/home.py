"""The App Home tab (views.publish): a dashboard for admins, a short help page for everyone else.

Admins see the active model and the routing, each model's health with the time of the check, the latest
benchmark as a table with its chart, today's traffic, a model select (Slack asks to confirm before it switches)
and a "Run benchmark" button. Both views fit Slack's 100 blocks of a Home tab.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from bot.conversation import benchmarks
from bot.conversation.benchmarks import summary
from bot.slack.chart_blocks import latency_accuracy_block
from bot.slack.table_blocks import table_block
from bot.tables import render_table

SWITCH_ACTION = "home_switch_model"
BENCH_ACTION = "home_run_benchmark"
MAX_BLOCKS = 100


def _section(text: str, **extra: Any) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}} | extra


def _context(text: str) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": text}]}


def _plain(text: str) -> dict[str, Any]:
    return {"type": "plain_text", "text": text}


def help_view(prompts: tuple[str, ...]) -> dict[str, Any]:
    examples = "\n".join(f"• _{p}_" for p in prompts)
    return {"type": "home", "blocks": [
        {"type": "header", "text": _plain("bankbot")},
        _section("I answer questions about cards, transfers, top-ups and your account. Open the *Messages* tab "
                 "and ask, or mention me in a channel."),
        _section(f"*For example:*\n{examples}"),
    ]}


async def today(runtime: Any, now: datetime) -> dict[str, Any]:
    """Requests and error rate since midnight (UTC), with hand-offs and thumbs-up where the database keeps them
    (`dialogue_counts(since)`: {"handoffs", "thumbs_up", "thumbs_down"})."""
    since = now.replace(hour=0, minute=0, second=0, microsecond=0)
    metrics = await runtime.db.request_metrics(since)
    requests = sum(m.get("count", 0) for m in metrics)
    failed = sum(m.get("failed_requests", round(m.get("error_rate", 0) * m.get("count", 0))) for m in metrics)
    figures: dict[str, Any] = {"requests": requests, "error_rate": failed / requests if requests else None}
    counts = getattr(runtime.db, "dialogue_counts", None)
    if counts is not None:
        figures |= await counts(since)
    return figures


def today_text(figures: dict[str, Any]) -> str:
    parts = [f"*Requests:* {figures['requests']:,}"]
    if figures.get("error_rate") is not None:
        parts.append(f"*Error rate:* {figures['error_rate']:.1%}")
    if "handoffs" in figures:
        parts.append(f"*Hand-offs:* {figures['handoffs']:,}")
    votes = figures.get("thumbs_up", 0) + figures.get("thumbs_down", 0)
    if "thumbs_up" in figures and votes:
        parts.append(f"*Thumbs up:* {figures['thumbs_up'] / votes:.0%} of {votes:,}")
    return " · ".join(parts)


async def admin_view(runtime: Any, *, native: bool = True, chart: bool = True, notice: str | None = None,
                     now: datetime | None = None) -> dict[str, Any]:
    """`native`: the benchmark as a table block and a data_visualization chart; else a code block, no chart."""
    now = now or datetime.now(UTC)
    pipeline, factory = runtime.pipeline, runtime.factory
    models = list(dict.fromkeys([pipeline.active_model, *pipeline.options.fallback_order]))
    blocks: list[dict[str, Any]] = [{"type": "header", "text": _plain("bankbot: models and benchmarks")}]
    if notice:
        blocks.append(_context(notice))
    active = pipeline.active_model
    blocks.append(_section(f"*Active model:* `{active}` ({factory.default_version(active) or active})\n"
                           f"*Routing:* the active model first, then {' → '.join(pipeline.options.fallback_order)} "
                           "when it fails (each model has a timeout and a circuit breaker)."))
    health = await pipeline.health()
    checked = datetime.now(UTC)
    lines = []
    for name, status in health.items():
        state = ":large_green_circle: healthy" if status.healthy else f":red_circle: {status.reason}"
        latency = f" ({status.latency_ms:.0f} ms)" if status.healthy and status.latency_ms is not None else ""
        lines.append(f"`{name}` {state}{latency}")
    blocks += [_section("*Health*\n" + "\n".join(lines)), _context(f"Checked at {checked:%Y-%m-%d %H:%M:%S} UTC")]
    blocks.append(_section(f"*Today* (since 00:00 UTC)\n{today_text(await today(runtime, now))}"))
    blocks.append({"type": "divider"})
    run = await benchmarks.latest_run(runtime)
    figures = summary(run, await benchmarks.live_metrics(runtime), benchmarks.WINDOW_NAME)
    if figures is None:
        blocks.append(_section("*Latest benchmark:* none yet. Run one with the button below."))
    else:
        blocks.append(_section(f"*{figures.title}*\n{figures.caption}"))
        rows = figures.rows[:99]
        blocks.append(table_block(figures.headers, rows) if native
                      else _section("```" + render_table(figures.headers, rows) + "```"))
        if figures.recommendation:
            blocks.append(_context(f"*Recommendation:* {figures.recommendation}"))
        graph = latency_accuracy_block(run["results"], f"Run #{run['id']}: latency against accuracy") if run else None
        if native and chart and graph:
            blocks.append(graph)
    blocks.append({"type": "divider"})
    blocks.append(_section("*Switch the model* (health-checked and audited, as `/llm-switch`)",
                           accessory=model_select(models, active)))
    blocks.append({"type": "actions", "block_id": "home_benchmark", "elements": [
        {"type": "button", "action_id": BENCH_ACTION, "text": _plain("Run benchmark"), "style": "primary",
         "value": "run"}]})
    return {"type": "home", "blocks": blocks[:MAX_BLOCKS]}


def model_select(models: list[str], active: str) -> dict[str, Any]:
    options = [{"text": _plain(name), "value": name} for name in models]
    return {"type": "static_select", "action_id": SWITCH_ACTION, "placeholder": _plain("Choose a model"),
            "options": options, "initial_option": next(o for o in options if o["value"] == active),
            "confirm": {"title": _plain("Switch the model?"),
                        "text": {"type": "mrkdwn", "text": "Every replica will answer with the chosen model once "
                                                           "it passes a health check. The switch is audited."},
                        "confirm": _plain("Switch"), "deny": _plain("Cancel")}}
