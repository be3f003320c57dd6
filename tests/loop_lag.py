"""How long the event loop was stalled: a ticker task asks to wake every TICK_S and records the longest
overshoot. A blocking call anywhere on the loop shows up as a lag of about its duration.

    async with LoopLag() as lag:
        await something()
    assert lag.max_s < 0.25
"""

from __future__ import annotations

import asyncio

TICK_S = 0.01


class LoopLag:
    def __init__(self) -> None:
        self.max_s = 0.0
        self._task: asyncio.Task | None = None

    async def _tick(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            asked = loop.time()
            await asyncio.sleep(TICK_S)
            self.max_s = max(self.max_s, loop.time() - asked - TICK_S)

    async def __aenter__(self) -> LoopLag:
        self._task = asyncio.create_task(self._tick())
        await asyncio.sleep(0)  # the ticker runs before the code under test
        return self

    async def __aexit__(self, *exc_info) -> None:
        assert self._task is not None
        await asyncio.sleep(TICK_S * 2)  # a stall at the very end is measured too
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
