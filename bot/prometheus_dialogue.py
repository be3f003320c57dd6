"""The dialogue's figures on /metrics, per model and "all" over the last 24 hours (bot/conversation/analytics.py):
containment, hand-off rate by reason, clarification rate and the share resolved by a click, thumbs-up share.
Read from the database at scrape time within a bounded timeout; a failed read keeps the last figures."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from typing import Any

from prometheus_client.core import GaugeMetricFamily, Metric

from bot.conversation.analytics import dialogue_analytics

log = logging.getLogger(__name__)
RATES = (("containment", "bankbot_dialogue_containment", "Share of turns answered with no hand-off"),
         ("clarification_rate", "bankbot_dialogue_clarification_rate", "Share of turns that asked \"Do you mean\""),
         ("clarified_by_click", "bankbot_dialogue_clarified_by_click",
          "Share of clarifying questions resolved by choosing an offered intent"),
         ("thumbs_up", "bankbot_dialogue_thumbs_up_share", "Share of thumbs-up among answers' feedback"))


class DialogueGauges:
    def __init__(self, runtime: Any, timeout_s: float):
        self.runtime = runtime
        self.timeout_s = timeout_s
        self.figures: dict[str, dict[str, Any]] = {}

    async def refresh(self) -> None:
        try:
            async with asyncio.timeout(self.timeout_s):
                self.figures = await dialogue_analytics(self.runtime.db)
        except Exception as exc:  # noqa: BLE001 - a scrape must work while the database is down
            log.warning("metrics: could not read the dialogue figures: %s", type(exc).__name__)

    def collect(self) -> Iterator[Metric]:
        for key, name, doc in RATES:
            gauge = GaugeMetricFamily(name, f"{doc}, last 24 hours, by model (\"all\": every turn)", labels=["model"])
            for model, figures in self.figures.items():
                if figures.get(key) is not None:
                    gauge.add_metric([model], figures[key])
            yield gauge
        handoffs = GaugeMetricFamily("bankbot_dialogue_handoff_rate", "Hand-offs to a person per turn, last 24 "
                                     "hours, by model and reason", labels=["model", "reason"])
        for model, figures in self.figures.items():
            for reason, rate in (figures.get("handoffs_by_reason") or {}).items():
                if rate is not None:
                    handoffs.add_metric([model, reason], rate)
        yield handoffs
