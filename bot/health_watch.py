"""Background health checks of every configured model, so `bankbot_model_healthy` (and its alert) sees the
fallback models too, not only the active one that /ready checks.

Each check is one real inference outside the pipeline (`generate(record=False)`): no request row, no call
record, nothing in the live metrics. A cloud model's check is a paid call, so cloud models are checked at a
slower interval; a model still loading or training is not checked (the warm-up reports it).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from bot.api.readiness import ReadinessProbe
from llm.priority import background_work

log = logging.getLogger(__name__)

LOCAL_INTERVAL_S = 60.0  # CPU and GPU models
CLOUD_INTERVAL_S = 600.0  # Gemini: each check is billed
MAX_NAP_S = 5.0  # how long the watch sleeps at most between looks (a switch or a warm model is seen soon)


class HealthWatch:
    def __init__(self, probe: ReadinessProbe, *, local_interval_s: float = LOCAL_INTERVAL_S,
                 cloud_interval_s: float = CLOUD_INTERVAL_S, clock: Callable[[], float] = time.monotonic):
        self.probe = probe
        self.runtime = probe.runtime
        self.local_interval_s = local_interval_s
        self.cloud_interval_s = cloud_interval_s
        self.clock = clock
        self.due: dict[str, float] = {}  # model -> clock time of its next check
        self.checks: dict[str, int] = {}  # model -> checks made

    def names(self) -> list[str]:
        pipeline = self.runtime.pipeline
        return list(dict.fromkeys([pipeline.active_model, *pipeline.options.fallback_order]))

    def interval(self, name: str) -> float:
        adapter = self.runtime.factory.loaded().get(name)
        return self.cloud_interval_s if adapter is not None and adapter.device == "cloud" else self.local_interval_s

    def _warming(self, name: str) -> bool:
        warmup = self.runtime.warmup
        warmth = warmup.status(name) if warmup is not None else None
        return warmth is not None and warmth.state in ("loading", "training")

    async def check_due(self) -> None:
        """Check every model whose time has come, concurrently."""
        now = self.clock()
        due = [n for n in self.names() if self.due.get(n, now) <= now and not self._warming(n)]
        await asyncio.gather(*(self._check(name) for name in due))

    async def _check(self, name: str) -> None:
        with background_work():  # where a model queues (custom's batcher), customers go first
            status = await self.probe.model_health(name)
        self.checks[name] = self.checks.get(name, 0) + 1
        interval = self.interval(name)
        self.due[name] = self.clock() + interval
        self.probe.shown_for_s[name] = interval * 2 + MAX_NAP_S  # the gauge keeps it until two checks are missed
        if not status.healthy:
            log.warning("health check: %s is unhealthy: %s", name, status.reason)

    async def run(self) -> None:
        await self.runtime.started.wait()
        while True:
            try:
                await self.check_due()
            except Exception:  # noqa: BLE001 - the watch must outlive any one failure
                log.exception("background health check failed")
            now = self.clock()
            soonest = min((self.due.get(n, now) for n in self.names() if not self._warming(n)),
                          default=now + MAX_NAP_S)
            await asyncio.sleep(min(max(soonest - now, 0.01), MAX_NAP_S))
