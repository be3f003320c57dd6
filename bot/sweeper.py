"""The sweeper's life in a server (bot/conversation/sweeper.py does the work): an aiohttp cleanup context that,
once the runtime has started, sweeps once before questions are served (the middleware waits for `swept`), then
sweeps every SWEEP_INTERVAL_S and renews this replica's leases every third of CLAIM_LEASE_S. At shutdown it stops
sweeping as soon as the shutdown begins, keeps renewing while the answers in flight finish, and at the very end
releases the leases of the work it did not finish, so another replica takes that work over at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

from aiohttp import web

from bot.conversation.durable import claims_of
from bot.conversation.sweeper import Resumer, Sweeper

log = logging.getLogger(__name__)


def sweeper_context(runtime: Any, resumers: Callable[[], dict[str, tuple[Resumer, Any]]], swept: asyncio.Event,
                    stopping: Callable[[], bool]):
    """A cleanup context. `resumers()` is read at start-up (the front ends are attached by then); `stopping()` is
    true once a shutdown has begun."""
    async def context(app: web.Application) -> AsyncIterator[None]:
        book = claims_of(runtime)
        sweeper = Sweeper(runtime, resumers())

        async def run() -> None:
            await runtime.started.wait()
            try:
                taken = await sweeper.sweep()
                if taken:
                    log.warning("start-up sweep: took over %d unanswered questions", len(taken))
            except Exception as exc:  # noqa: BLE001 - serve anyway; the next round retries
                log.warning("start-up sweep failed (%s: %s)", type(exc).__name__, exc)
            finally:
                swept.set()
            while not stopping():
                await asyncio.sleep(sweeper.interval_s)
                if stopping():
                    break
                try:
                    await sweeper.sweep()
                except Exception as exc:  # noqa: BLE001 - database down: the next round retries
                    log.warning("sweep failed (%s: %s)", type(exc).__name__, exc)

        sweeping = asyncio.create_task(run(), name="claims-sweeper")
        heartbeat = asyncio.create_task(book.run_heartbeat(), name="claims-heartbeat")
        try:
            yield
        finally:
            for task in (sweeping, heartbeat):
                task.cancel()
            await asyncio.gather(sweeping, heartbeat, return_exceptions=True)
            await book.release()

    return context
