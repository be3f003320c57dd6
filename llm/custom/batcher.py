"""A micro-batcher: requests that arrive within a few milliseconds of each other run as one model batch.

The model runs in one dedicated worker thread, so the event loop never blocks and torch never runs two
batches at once (they would only fight over the same cores). Live requests go first: work submitted inside
llm.priority.background_work() (benchmark runs, health checks) only fills the room a batch has left, or runs
when no live request waits.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Generic, TypeVar

from llm.priority import is_background

In = TypeVar("In")
Out = TypeVar("Out")


class MicroBatcher(Generic[In, Out]):
    def __init__(self, fn: Callable[[list[In]], Sequence[Out]], max_batch: int = 16, window_ms: float = 2.0):
        self.fn = fn  # runs a whole batch; returns one output per input, in order
        self.max_batch = max_batch
        self.window_s = window_ms / 1000
        self._live: deque[tuple[In, asyncio.Future]] = deque()  # futures resolve to (output, queue_ms)
        self._background: deque[tuple[In, asyncio.Future]] = deque()
        self._worker: asyncio.Task | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="custom-model")
        self.batches = 0  # batches run so far
        self.items = 0  # requests served so far
        self.background_items = 0  # of which submitted as background work

    @property
    def pending(self) -> int:
        """Requests waiting for a batch (live and background)."""
        return len(self._live) + len(self._background)

    async def submit(self, item: In) -> Out:
        """The output for `item`; queued behind live requests when called inside background_work()."""
        return (await self.submit_timed(item))[0]

    async def submit_timed(self, item: In) -> tuple[Out, float]:
        """The output for `item`, and how long it waited for its batch to start (ms)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future = loop.create_future()
        future.submitted_at = time.perf_counter()  # type: ignore[attr-defined]
        (self._background if is_background() else self._live).append((item, future))
        if self._worker is None or self._worker.done():
            self._worker = loop.create_task(self._drain())
        return await future

    def _next_batch(self) -> tuple[list[tuple[In, asyncio.Future]], int]:
        """Up to max_batch waiting requests, live ones first; and how many of them are background work."""
        live = _take(self._live, self.max_batch)
        background = _take(self._background, self.max_batch - len(live))
        return live + background, len(background)

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        await asyncio.sleep(self.window_s)  # an idle batcher waits briefly for concurrent requests to join
        while self._live or self._background:
            batch, background = self._next_batch()
            if not batch:
                continue
            started = time.perf_counter()
            try:
                outputs = await loop.run_in_executor(self._executor, self.fn, [item for item, _ in batch])
            except Exception as exc:  # noqa: BLE001 - every caller of the batch gets the error
                for _, fut in batch:
                    if not fut.done():
                        fut.set_exception(exc)
                continue
            self.batches += 1
            self.items += len(batch)
            self.background_items += background
            for (_, fut), out in zip(batch, outputs, strict=True):
                if not fut.done():
                    fut.set_result((out, (started - fut.submitted_at) * 1000))

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


def _take(queue: deque[tuple[In, asyncio.Future]], room: int) -> list[tuple[In, asyncio.Future]]:
    """Up to `room` requests from the front of `queue`, skipping callers that gave up (cancelled, timed out)."""
    taken: list[tuple[In, asyncio.Future]] = []
    while queue and len(taken) < room:
        item, fut = queue.popleft()
        if not fut.done():
            taken.append((item, fut))
    return taken
