"""/llm-bench in Slack: the shared figures (bot/conversation/benchmarks.py) as native `table` blocks, with the
same table as mrkdwn code blocks in the message text: the fallback for clients that cannot show tables (and for
notifications). A table longer than one page is posted as several messages, one table each."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bot.conversation.benchmarks import Figures, history, summary
from bot.slack.table_blocks import pages, table_block
from bot.tables import render_table

HISTORY_PAGE_ROWS = 25  # runs per message; Slack's own limit is 99 rows under the header

NO_RUN = "No benchmark has run yet and no requests were served. Start one with `/llm-bench run`."
NO_HISTORY = "No benchmark has run yet. Start one with `/llm-bench run`."


def figures_messages(figures: Figures, *, per_page: int = HISTORY_PAGE_ROWS,
                     recommendation_label: str = "Recommendation") -> list[dict[str, Any]]:
    """chat.postMessage / response_url arguments (text and blocks) for any Figures: one message per page."""
    chunks = pages(figures.rows, per_page)
    messages = []
    for number, rows in enumerate(chunks, 1):
        title = figures.title if len(chunks) == 1 else f"{figures.title} (page {number} of {len(chunks)})"
        heading = f"*{title}*\n{figures.caption}"
        text = [heading, "```" + render_table(figures.headers, rows) + "```"]
        blocks: list[dict[str, Any]] = [{"type": "section", "text": {"type": "mrkdwn", "text": heading}}]
        if rows:
            blocks.append(table_block(figures.headers, rows))
        if figures.recommendation and number == len(chunks):
            line = f"*{recommendation_label}:* {figures.recommendation}"
            text.append(line)
            blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": line}]})
        messages.append({"text": "\n".join(text), "blocks": blocks})
    return messages


def summary_message(run: dict[str, Any] | None, metrics: Sequence[dict[str, Any]], window: str) -> dict[str, Any]:
    figures = summary(run, metrics, window)
    if figures is None:
        return {"text": NO_RUN}
    return figures_messages(figures, per_page=99)[0]


def history_messages(runs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    figures = history(runs)
    if figures is None:
        return [{"text": NO_HISTORY}]
    return figures_messages(figures, recommendation_label="Latest recommendation")


def summary_text(run: dict[str, Any] | None, metrics: Sequence[dict[str, Any]], window: str) -> str:
    return summary_message(run, metrics, window)["text"]


def history_text(runs: Sequence[dict[str, Any]]) -> str:
    return "\n".join(m["text"] for m in history_messages(runs))
