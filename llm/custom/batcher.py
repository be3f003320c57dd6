"""A micro-batcher: requests that arrive within a few milliseconds of each other run as one model batch.

The model runs in one dedicated worker thread, so the event loop never blocks and torch never runs two
batches at once (they would only fight over the same cores).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Generic, TypeVar

In = TypeVar("In")
Out = TypeVar("Out")


class MicroBatcher(Generic[In, Out]):
    def __init__(self, fn: Callable[[list[In]], Sequence[Out]], max_batch: int = 16, window_ms: float = 2.0):
        self.fn = fn  # runs a whole batch; returns one output per input, in order
        self.max_batch = max_batch
        self.window_s = window_ms / 1000
        self._pending: list[tuple[In, asyncio.Future]] = []
        self._worker: asyncio.Task | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="custom-model")
        self.batches = 0  # batches run so far
        self.items = 0  # requests served so far

    async def submit(self, item: In) -> Out:
        loop = asyncio.get_running_loop()
        future: asyncio.Future = loop.create_future()
        self._pending.append((item, future))
        if self._worker is None or self._worker.done():
            self._worker = loop.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        await asyncio.sleep(self.window_s)  # an idle batcher waits briefly for concurrent requests to join
        while self._pending:
            batch, self._pending = self._pending[: self.max_batch], self._pending[self.max_batch :]
            batch = [(item, fut) for item, fut in batch if not fut.done()]  # drop cancelled callers
            if not batch:
                continue
            try:
                outputs = await loop.run_in_executor(self._executor, self.fn, [item for item, _ in batch])
            except Exception as exc:  # noqa: BLE001 - every caller of the batch gets the error
                for _, fut in batch:
                    if not fut.done():
                        fut.set_exception(exc)
                continue
            self.batches += 1
            self.items += len(batch)
            for (_, fut), out in zip(batch, outputs, strict=True):
                if not fut.done():
                    fut.set_result(out)

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
