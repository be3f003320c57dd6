"""Pieces of benchmarks/chaos.py: signed Slack traffic spread over replicas, and what the fake Slack received."""

from __future__ import annotations

import asyncio
import inspect
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import asyncpg

from tests.fake_slack import BOT_USER_ID, FakeSlack
from tests.serve_helpers import ServerProcess
from tests.slack_helpers import event_body, mention, signed_headers

RETRY_ATTEMPTS = 3  # Slack retries a delivery that failed up to three times


async def wait_until(predicate: Callable[[], Any], within_s: float) -> bool:
    """Poll `predicate` (sync or async) every 0.1 s; False when it is still falsy after `within_s`."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        value = predicate()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return True
        await asyncio.sleep(0.1)
    return False


async def count_rows(db_url: str) -> int:
    conn = await asyncpg.connect(db_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        return await conn.fetchval("SELECT count(*) FROM requests")
    finally:
        await conn.close()


class Traffic:
    """Signed app_mention events in one channel, each to a random replica that is up; one thread per event."""

    def __init__(self, http: aiohttp.ClientSession, fake: FakeSlack, replicas: dict[str, ServerProcess],
                 channel: str, rng: random.Random):
        self.http, self.fake, self.replicas, self.channel, self.rng = http, fake, replicas, channel, rng
        self.sent = 0  # distinct events
        self.duplicates_sent = 0
        self.acked: dict[str, str] = {}  # thread ts -> the replica that acknowledged the event first
        self.failed = 0  # deliveries that no replica took after every retry

    async def run(self, n: int, *, rate: float, duplicate_share: float = 0.0, markers: tuple[str, ...] = ("",),
                  actions: dict[int, Callable[[], Awaitable[None]]] | None = None) -> None:
        """Send `n` events at `rate` per second; `actions[i]` starts (as a task) when event i is sent."""
        actions, tasks = actions or {}, []
        for i in range(n):
            if i in actions:
                tasks.append(asyncio.create_task(actions[i]()))
            marker = markers[i % len(markers)]
            event = mention(f"<@{BOT_USER_ID}> where is my card {i}? {marker}".strip(), channel=self.channel)
            body = event_body(event)
            self.sent += 1
            tasks.append(asyncio.create_task(self._deliver(event["ts"], body)))
            if self.rng.random() < duplicate_share:
                self.duplicates_sent += 1
                retry = 1 if self.duplicates_sent % 2 else None  # half as Slack retries, half as plain repeats
                tasks.append(asyncio.create_task(self._deliver(event["ts"], body, retry=retry,
                                                               delay_s=self.rng.uniform(0, 0.5))))
            await asyncio.sleep(1 / rate)
        await asyncio.gather(*tasks)

    async def _deliver(self, ts: str, body: str, retry: int | None = None, delay_s: float = 0.0) -> None:
        await asyncio.sleep(delay_s)
        tried: list[str] = []
        for attempt in range(RETRY_ATTEMPTS + 1):
            up = [n for n, r in self.replicas.items() if r.process.returncode is None and n not in tried]
            if not up:
                tried, up = [], [n for n, r in self.replicas.items() if r.process.returncode is None]
            if not up:
                break
            name = self.rng.choice(up)
            tried.append(name)
            headers = signed_headers(body, retry=retry if attempt == 0 else (retry or 0) + attempt)
            try:
                async with self.http.post(self.replicas[name].url + "/slack/events", data=body.encode(),
                                          headers=headers) as response:
                    await response.read()
                    if response.status == 200:
                        self.acked.setdefault(ts, name)
                        return
            except (aiohttp.ClientError, OSError):
                pass  # that replica is down: Slack retries, and the load balancer picks another
            await asyncio.sleep(0.2)
        self.failed += 1

    # -- what the fake Slack received -----------------------------------------------------------------

    def posts(self) -> list[dict[str, Any]]:
        return [p for p in self.fake.posts() if p.get("channel") == self.channel]

    def answered(self) -> int:
        """Events with at least one answer."""
        return len({p["thread_ts"] for p in self.posts()})

    def answered_acked(self) -> int:
        """Acknowledged events with at least one answer (a killed replica may also have claimed, and so answered,
        events whose ack never reached the sender)."""
        return len({p["thread_ts"] for p in self.posts()} & set(self.acked))

    def duplicate_answers(self) -> int:
        return sum(count - 1 for count in Counter(p["thread_ts"] for p in self.posts()).values())
