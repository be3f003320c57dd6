"""Daily budgets of paid models (MODEL_BUDGET_USD_PER_DAY), counted across replicas in the database.

Before a paid call its estimated cost (the adapter's estimate, growing to the dearest call seen) is reserved
atomically in the database; once the call has run, the difference to its real cost is settled. A refused
reservation means the day's budget is spent: live requests fall back, and escalation, shadow calls and the
benchmark skip the model until the UTC day turns. A database that cannot be reached fails open (logged).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

log = logging.getLogger(__name__)
DB_TIMEOUT_S = 1.0  # a request waits at most this long for its reservation


def parse_budgets(value: str | float | None) -> tuple[dict[str, float], float | None]:
    """(per-model limits, limit of any other paid model) from one number or a JSON object {"gemini": 5}."""
    if value is None or value == "":
        return {}, None
    if isinstance(value, int | float):
        return {}, float(value)
    text = str(value).strip()
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        raise ValueError(f"{text!r} is neither a number nor a JSON object of numbers") from None
    if isinstance(data, int | float) and not isinstance(data, bool):
        return {}, float(data)
    if isinstance(data, dict) and all(isinstance(v, int | float) and not isinstance(v, bool) for v in data.values()):
        default = data.pop("*", None)
        return {str(k): float(v) for k, v in data.items()}, (float(default) if default is not None else None)
    raise ValueError(f"{text!r} is neither a number nor a JSON object of numbers")


class ModelBudgets:
    def __init__(self, store: Any, limits: dict[str, float], default: float | None,
                 today: Callable[[], str] = lambda: datetime.now(UTC).strftime("%Y-%m-%d")):
        self.store = store
        self.limits = limits
        self.default = default
        self.today = today
        self.spent: dict[str, float] = {}  # last total seen per model (today), for metrics and /llm-switch
        self._exhausted: dict[str, str] = {}  # model -> the day its budget was found spent
        self._estimates: dict[str, float] = {}

    def limit_of(self, model: str) -> float | None:
        return self.limits.get(model, self.default)

    def exhausted(self, model: str) -> str | None:
        """Why `model` must not be called today, or None (known without asking the database)."""
        if self._exhausted.get(model) == self.today():
            return f"daily budget of ${self.limit_of(model):.2f} spent"
        return None

    async def reserve(self, model: str, estimate_usd: float) -> float | None:
        """The amount reserved for one call of `model` (0.0 without a limit), or None when the budget is spent."""
        limit = self.limit_of(model)
        if limit is None:
            return 0.0
        day = self.today()
        if self._exhausted.get(model) == day:
            return None
        amount = max(estimate_usd, self._estimates.get(model, 0.0))
        try:
            async with asyncio.timeout(DB_TIMEOUT_S):
                total = await self.store.reserve_spend(model, day, amount, limit)
        except Exception as exc:  # noqa: BLE001 - a database outage must not stop answers: fail open
            log.warning("could not reserve %s's budget (allowed): %s", model, exc)
            return 0.0
        if total is None:
            self._exhausted[model] = day
            self.spent[model] = max(self.spent.get(model, 0.0), limit - amount)
            log.warning("%s's daily budget of $%.2f is spent: skipped until the UTC day turns", model, limit)
            return None
        self.spent[model] = total
        return amount

    async def settle(self, model: str, reserved_usd: float, cost_usd: float | None) -> None:
        """A reserved call ended and cost `cost_usd` (None or 0 for a failure before any tokens)."""
        if self.limit_of(model) is None:
            return
        cost = cost_usd or 0.0
        self._estimates[model] = max(self._estimates.get(model, 0.0), cost)
        if cost == reserved_usd:
            return
        try:
            await self.store.adjust_spend(model, self.today(), cost - reserved_usd)
            self.spent[model] = self.spent.get(model, 0.0) + cost - reserved_usd
        except Exception as exc:  # noqa: BLE001
            log.warning("could not settle %s's spend: %s", model, exc)

    async def refresh(self) -> dict[str, float]:
        """Today's spend per model from the database (every replica's); forgets yesterday's exhaustion."""
        day = self.today()
        self.spent = await self.store.spend_on(day)
        for model, usd in self.spent.items():
            limit = self.limit_of(model)
            if limit is not None and usd >= limit:
                self._exhausted[model] = day
        self._exhausted = {m: d for m, d in self._exhausted.items() if d == day}
        return self.spent

    def snapshot(self) -> dict[str, dict[str, float | None]]:
        models = dict.fromkeys([*self.limits, *self.spent])
        return {m: {"spent_usd": self.spent.get(m, 0.0), "limit_usd": self.limit_of(m)} for m in models}
