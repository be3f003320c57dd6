"""Benchmark tables as Adaptive Cards (schema 1.5, which Teams renders) with a Table element, kept under the size
Teams accepts: the oldest rows are left out (and said so) rather than the card refused."""

from __future__ import annotations

import json
from typing import Any

from microsoft_agents.activity import Activity, ActivityTypes, Attachment

from bot.conversation.benchmarks import Figures

CARD_CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"
SCHEMA = "http://adaptivecards.io/schemas/adaptive-card.json"
CARD_LIMIT_BYTES = 26_000  # Teams refuses activities over about 28 KB; the rest is the activity's envelope


def _text(text: str, **style: Any) -> dict[str, Any]:
    return {"type": "TextBlock", "text": text, "wrap": True} | style


def _row(cells: tuple, header: bool = False) -> dict[str, Any]:
    style = {"weight": "Bolder"} if header else {}
    return {"type": "TableRow", "cells": [{"type": "TableCell", "items": [_text("-" if c is None else str(c),
                                                                                 **style)]} for c in cells]}


def table_card(figures: Figures) -> dict[str, Any]:
    """The card; when it would be too large, the first (oldest) rows are dropped and a note says how many."""
    rows = list(figures.rows)
    dropped = 0
    while True:
        card = _card(figures, rows, dropped)
        if size_of(card) <= CARD_LIMIT_BYTES or len(rows) <= 1:
            return card
        rows.pop(0)
        dropped += 1


def _card(figures: Figures, rows: list[tuple], dropped: int) -> dict[str, Any]:
    body = [_text(figures.title, weight="Bolder", size="Medium"), _text(figures.caption, isSubtle=True),
            {"type": "Table", "firstRowAsHeaders": True, "showGridLines": True,
             "columns": [{"width": 1} for _ in figures.headers],
             "rows": [_row(figures.headers, header=True), *(_row(r) for r in rows)]}]
    if dropped:
        body.append(_text(f"{dropped} older row(s) left out to fit Teams' message size.", isSubtle=True))
    if figures.recommendation:
        body.append(_text(f"**Recommendation:** {figures.recommendation}"))
    return {"type": "AdaptiveCard", "$schema": SCHEMA, "version": "1.5", "body": body}


def size_of(card: dict[str, Any]) -> int:
    return len(json.dumps(card, ensure_ascii=False).encode())


def card_activity(card: dict[str, Any]) -> Activity:
    return Activity(type=ActivityTypes.message, attachments=[Attachment(content_type=CARD_CONTENT_TYPE,
                                                                        content=card)])
