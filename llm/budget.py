"""A daily spending limit for paid model calls nobody asked for (the periodic benchmark).

Before each paid call the guard reserves the call's estimated cost, and refuses once what was spent today
(every replica's periodic runs, read from the database), plus this run's spend and reservations, would pass
the limit. The estimate starts at the adapter's own and grows to the dearest call seen.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class SpendGuard:
    limit_usd: float  # BENCHMARK_BUDGET_USD_PER_DAY
    spent_before_usd: float  # today's periodic spend before this run, across replicas
    estimate_usd: float  # cost of one call, before any is seen
    spent_usd: float = 0.0  # this run
    reserved_usd: float = 0.0  # calls in flight
    refused: int = 0  # calls not made

    def reserve(self) -> bool:
        """True (and the estimate reserved) when one more call stays within the limit."""
        if self.spent_before_usd + self.spent_usd + self.reserved_usd + self.estimate_usd > self.limit_usd:
            self.refused += 1
            return False
        self.reserved_usd += self.estimate_usd
        return True

    def settle(self, reserved_usd: float, cost_usd: float) -> None:
        """A reserved call ended; `cost_usd` is what it cost (0 for a failure before any tokens)."""
        self.reserved_usd = max(0.0, self.reserved_usd - reserved_usd)
        self.spent_usd += cost_usd
        self.estimate_usd = max(self.estimate_usd, cost_usd)

    def describe(self) -> str:
        total = self.spent_before_usd + self.spent_usd
        return (f"daily budget: ${total:.4f} of ${self.limit_usd:.2f} spent today; "
                f"{self.refused} question(s) not asked")
