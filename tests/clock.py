"""A clock the storage tests move by hand, so expiry and time windows are tested without sleeping.

`frozen_clock` replaces the wall clock that storage.database and storage.claim_queries read (`time.time()` for
rate-limit windows, `utcnow()` for leases and event claims) for every Database in the test; `clock.advance(s)` moves it.
Monotonic time (housekeeping intervals) keeps running as usual.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

import storage.claim_queries
import storage.database

START = 31_666_667 * 60 + 20.25  # in 2030, 20.25 s into a minute: 39.75 s before that minute's window ends


class FrozenClock:
    def __init__(self, now: float = START):
        self.now = now

    def time(self) -> float:
        return self.now

    def monotonic(self) -> float:
        return time.monotonic()

    def utcnow(self) -> datetime:
        return datetime.fromtimestamp(self.now, UTC)

    def later(self, seconds: float) -> datetime:
        return self.utcnow() + timedelta(seconds=seconds)

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def frozen_clock(monkeypatch) -> FrozenClock:
    clock = FrozenClock()
    monkeypatch.setattr(storage.database, "time", clock)  # time.time() and time.monotonic() in that module
    monkeypatch.setattr(storage.database, "utcnow", clock.utcnow)
    monkeypatch.setattr(storage.claim_queries, "utcnow", clock.utcnow)
    return clock
