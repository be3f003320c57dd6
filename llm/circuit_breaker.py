"""A per-model circuit breaker: after K consecutive failures, skip the model for a cool-down."""

from __future__ import annotations

import time
from collections.abc import Callable
from enum import StrEnum


class BreakerState(StrEnum):
    CLOSED = "closed"  # calls go through
    OPEN = "open"  # calls are skipped until the cool-down ends
    HALF_OPEN = "half_open"  # the cool-down ended: one trial call decides


class CircuitBreaker:
    def __init__(self, failure_threshold: int = 3, cooldown_s: float = 30.0,
                 clock: Callable[[], float] = time.monotonic):
        self.failure_threshold = failure_threshold
        self.cooldown_s = cooldown_s
        self._clock = clock
        self.consecutive_failures = 0
        self._opened_at: float | None = None
        self._trial_started_at: float | None = None  # half-open: the one call let through, until it ends

    @property
    def state(self) -> BreakerState:
        if self._opened_at is None:
            return BreakerState.CLOSED
        if self._clock() - self._opened_at >= self.cooldown_s:
            return BreakerState.HALF_OPEN
        return BreakerState.OPEN

    def allows_call(self) -> bool:
        """Closed: yes. Open: no. Half-open: one trial call at a time (a trial that never reported back,
        say a cancelled one, stops counting after another cool-down)."""
        state = self.state
        if state is BreakerState.HALF_OPEN:
            now = self._clock()
            if self._trial_started_at is not None and now - self._trial_started_at < self.cooldown_s:
                return False
            self._trial_started_at = now
            return True
        return state is BreakerState.CLOSED

    def record_success(self) -> None:
        self.consecutive_failures = 0
        self._opened_at = None
        self._trial_started_at = None

    def record_neutral(self) -> None:
        """A call that says nothing about the model's health (it rejected one prompt): a half-open trial ends,
        the failure count stays as it is."""
        self._trial_started_at = None

    def record_failure(self) -> None:
        self._trial_started_at = None
        self.consecutive_failures += 1
        if self.state is BreakerState.HALF_OPEN or self.consecutive_failures >= self.failure_threshold:
            self._opened_at = self._clock()  # (re)open: a failed trial starts a new cool-down

    def retry_in_s(self) -> float:
        if self._opened_at is None:
            return 0.0
        return max(0.0, self.cooldown_s - (self._clock() - self._opened_at))
