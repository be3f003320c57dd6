"""Readiness: the server has started, the active model is warm and healthy, and the database answers.

While the database is being migrated, or the active model loads or trains (bot/warmup.py), /ready is 503 with
the reason (and the training's progress) without any model call.

A model's health check runs one real inference (a paid call on Gemini), so each model's result is kept for
`ttl_s` (`failed_ttl_s` after a failure, to notice a recovery sooner) and concurrent probes share one check.
An open circuit breaker means unhealthy without any call.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from bot.runtime import Runtime
from llm.adapters.base import HealthStatus
from llm.circuit_breaker import BreakerState


@dataclass(frozen=True)
class Readiness:
    ready: bool
    active_model: str
    model: HealthStatus
    database: bool
    reason: str = ""  # why not ready
    progress: float | None = None  # training the active model: 0..1

    def to_dict(self) -> dict:
        data = {
            "ready": self.ready, "active_model": self.active_model,
            "model": {"healthy": self.model.healthy, "reason": self.model.reason,
                      "latency_ms": self.model.latency_ms},
            "database": "ok" if self.database else "unreachable",
        }
        if not self.ready:
            data["reason"] = self.reason or self.model.reason or "the database is unreachable"
        if self.progress is not None:
            data["progress"] = round(self.progress, 4)
        return data


class ReadinessProbe:
    def __init__(self, runtime: Runtime, ttl_s: float = 30.0, failed_ttl_s: float = 5.0):
        self.runtime = runtime
        self.ttl_s = ttl_s
        self.failed_ttl_s = failed_ttl_s
        self.last: dict[str, tuple[float, HealthStatus]] = {}  # model -> (monotonic time, status)
        self.shown_for_s: dict[str, float] = {}  # per model, how long healthy() shows a result (HealthWatch sets it)
        self._locks: dict[str, asyncio.Lock] = {}

    async def check(self) -> Readiness:
        runtime = self.runtime
        name = runtime.pipeline.active_model
        if not runtime.started.is_set():
            reason = "starting: migrating the database"
            return Readiness(False, name, HealthStatus(False, reason), False, reason)
        warmth = runtime.warmup.status(name) if runtime.warmup is not None else None
        if warmth is not None and warmth.state in ("loading", "training"):
            database = await runtime.db.ping()
            return Readiness(False, name, HealthStatus(False, warmth.reason), database, warmth.reason,
                             warmth.progress)
        model, database = await asyncio.gather(self.model_health(name), runtime.db.ping())
        return Readiness(model.healthy and database, name, model, database)

    async def model_health(self, name: str) -> HealthStatus:
        breaker = self.runtime.pipeline.breakers.get(name)
        if breaker is not None and breaker.state is BreakerState.OPEN:
            status = HealthStatus(False, f"circuit open after {breaker.consecutive_failures} failures")
            self.last[name] = (time.monotonic(), status)
            return status
        async with self._locks.setdefault(name, asyncio.Lock()):
            cached = self.last.get(name)
            if cached is not None and time.monotonic() - cached[0] < (
                    self.ttl_s if cached[1].healthy else self.failed_ttl_s):
                return cached[1]
            status = await self.runtime.pipeline.switcher.health_of(name)
            self.last[name] = (time.monotonic(), status)
            return status

    def healthy(self) -> dict[str, bool]:
        """The latest known health of each model checked within the cache time (for the Prometheus gauge), so a
        model switched away from stops reporting instead of keeping an alert firing."""
        now = time.monotonic()
        default = max(self.ttl_s, self.failed_ttl_s) * 2
        return {name: status.healthy for name, (at, status) in self.last.items()
                if now - at < self.shown_for_s.get(name, default) or name == self.runtime.pipeline.active_model}
