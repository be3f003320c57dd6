"""Dialogue analytics, per model and overall, for /llm-bench summary, GET /benchmark/summary and /metrics:
containment (turns answered with no hand-off), hand-off rate by reason, clarification rate and the share resolved
by a click, thumbs-up share with its 95% Wilson interval, and the intents with the most thumbs-down."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

from llm.routing.wilson import wilson
from storage.dialogue import SOMETHING_ELSE
from storage.dialogue_metrics import dialogue_counts

WINDOW = timedelta(hours=24)
OVERALL = "all"
TOP_DISLIKED = 3


async def dialogue_analytics(db: Any, since: datetime | None = None) -> dict[str, dict[str, Any]]:
    """{model | "all": figures}; rates are None where nothing was counted."""
    since = since or datetime.now(UTC) - WINDOW
    async with db.reads.connect() as conn:
        counts = await dialogue_counts(conn, since)
    return figures(counts)


def figures(counts: dict[str, Any]) -> dict[str, dict[str, Any]]:
    turns, clarified, handed = Counter(), Counter(), Counter()
    reasons: dict[str, Counter] = defaultdict(Counter)
    chosen, asked, up, votes = Counter(), Counter(), Counter(), Counter()
    disliked: dict[str, Counter] = defaultdict(Counter)
    for model, kind, n in counts["turns"]:
        for key in _keys(model):
            turns[key] += n
            clarified[key] += n if kind == "clarify" else 0
    for model, reason, n in counts["cases"]:
        for key in _keys(model):
            reasons[key][reason] += n
    for model, n in counts["handed"]:
        for key in _keys(model):
            handed[key] += n
    for model, pick, n in counts["clicks"]:
        for key in _keys(model):
            asked[key] += n
            chosen[key] += n if pick not in (None, SOMETHING_ELSE) else 0
    for model, positive, n in counts["votes"]:
        for key in _keys(model):
            votes[key] += n
            up[key] += n if positive else 0
    for model, intent, n in counts["downs"]:
        for key in _keys(model):
            disliked[key][intent or "?"] += n
    models = sorted({*turns, *votes} - {OVERALL}) + [OVERALL]
    return {m: {
        "turns": turns[m],
        "containment": _rate(turns[m] - handed[m], turns[m]),
        "handoff_rate": _rate(sum(reasons[m].values()), turns[m]),
        "handoffs_by_reason": {r: _rate(n, turns[m]) for r, n in sorted(reasons[m].items())},
        "clarification_rate": _rate(clarified[m], turns[m]),
        "clarified_by_click": _rate(chosen[m], asked[m]),
        "thumbs": votes[m],
        "thumbs_up": _rate(up[m], votes[m]),
        "thumbs_up_ci95": wilson(up[m], votes[m]) if votes[m] else None,
        "most_disliked": [intent for intent, _ in disliked[m].most_common(TOP_DISLIKED)],
    } for m in models}


def _keys(model: str | None) -> tuple[str, ...]:
    return (model, OVERALL) if model else (OVERALL,)


def _rate(n: int, of: int) -> float | None:
    return n / of if of else None
