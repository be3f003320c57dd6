"""/llm-bench in Slack: the shared figures (bot/conversation/benchmarks.py) as mrkdwn with code-block tables."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bot.conversation.benchmarks import history, summary
from bot.tables import render_table


def summary_text(run: dict[str, Any] | None, metrics: Sequence[dict[str, Any]], window: str) -> str:
    figures = summary(run, metrics, window)
    if figures is None:
        return "No benchmark has run yet and no requests were served. Start one with `/llm-bench run`."
    lines = [f"*{figures.title}*\n{figures.caption}",
             "```" + render_table(figures.headers, figures.rows) + "```"]
    if figures.recommendation:
        lines.append(f"*Recommendation:* {figures.recommendation}")
    return "\n".join(lines)


def history_text(runs: Sequence[dict[str, Any]]) -> str:
    figures = history(runs)
    if figures is None:
        return "No benchmark has run yet. Start one with `/llm-bench run`."
    return (f"*{figures.title}* ({figures.caption})\n```{render_table(figures.headers, figures.rows)}```\n"
            f"*Latest recommendation:* {figures.recommendation}")
