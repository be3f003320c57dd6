"""Clarifying questions: when the two most likely intents are close and neither is clear, ask "Do you mean ...?"
with a button for each (the knowledge base's customer-facing titles) and "Something else".

A model offers its two best intents as `result.extra["top_intents"] = [[label, confidence], [label, confidence]]`;
one that does not never clarifies.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bot.conversation.actions import Action, Do
from llm.adapters.base import OUT_OF_SCOPE

CLEAR = 0.5  # a calibrated confidence at or above this is more likely than every other reading together
SOMETHING_ELSE_LABEL = "Something else"
QUESTION = "I want to get this right. Do you mean:"


@dataclass(frozen=True)
class Pair:
    intents: tuple[str, str]
    confidences: tuple[float, float]


def close_pair(result: Any, margin: float) -> Pair | None:
    """The two readings to offer, or None when the answer may stand (one is clear, or they are far apart)."""
    top = _top_two(getattr(result, "extra", {}).get("top_intents"))
    if top is None:
        return None
    (a, pa), (b, pb) = top
    if OUT_OF_SCOPE in (a, b) or a == b or pa >= CLEAR or pa - pb > margin:
        return None
    return Pair((a, b), (pa, pb))


def _top_two(top: Any) -> tuple[tuple[str, float], tuple[str, float]] | None:
    if not isinstance(top, Sequence) or len(top) < 2:
        return None
    try:
        pairs = sorted(((str(label), float(p)) for label, p in top[:2]), key=lambda lp: -lp[1])
    except (TypeError, ValueError):
        return None
    return pairs[0], pairs[1]


def actions(clarification_id: int, pair: Pair, title) -> tuple[Action, ...]:
    """A button per intent (its title), then "Something else"."""
    return (*(Action(Do.CHOOSE, title(intent), f"{clarification_id}:{intent}") for intent in pair.intents),
            Action(Do.SOMETHING_ELSE, SOMETHING_ELSE_LABEL, str(clarification_id)))


def question_text(pair: Pair, title) -> str:
    return QUESTION + "".join(f"\n• {title(intent)}" for intent in pair.intents) + f"\n• {SOMETHING_ELSE_LABEL}"
