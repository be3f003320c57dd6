"""The micro-batcher serves live requests first: background work (benchmarks, health checks) fills the room a
batch has left, or runs when no live request waits. A scripted batch function holds the worker on an event, so
the queue's order is checked without any sleep."""

from __future__ import annotations

import asyncio
import threading

from llm.custom.batcher import MicroBatcher
from llm.priority import background_work, is_background

DEADLINE_S = 60  # generous: only a broken batcher gets near it


class Scripted:
    """A batch function that records each batch and holds the first one until released."""

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.loop = loop
        self.batches: list[list[str]] = []
        self.holding = loop.create_future()  # set once the first batch is inside the worker
        self.release = threading.Event()

    def __call__(self, items: list[str]) -> list[str]:
        self.batches.append(list(items))
        if len(self.batches) == 1:
            self.loop.call_soon_threadsafe(self.holding.set_result, None)
            assert self.release.wait(DEADLINE_S)
        return [item.upper() for item in items]


async def queued(batcher: MicroBatcher, n: int) -> None:
    """One yield: the tasks just created run up to their wait on the batcher (asyncio runs ready tasks in order)."""
    await asyncio.sleep(0)
    assert batcher.pending == n


async def test_live_requests_go_into_batches_before_background_work():
    script = Scripted(asyncio.get_running_loop())
    batcher = MicroBatcher(script, max_batch=4, window_ms=0)
    try:
        first = asyncio.create_task(batcher.submit("hold"))
        await asyncio.wait_for(script.holding, DEADLINE_S)  # the worker is busy with batch 1
        with background_work():  # tasks copy the context: these three are background work
            background = [asyncio.create_task(batcher.submit(f"bg{i}")) for i in range(3)]
        live = [asyncio.create_task(batcher.submit(f"live{i}")) for i in range(6)]  # they arrive later
        await queued(batcher, 9)
        script.release.set()
        assert await first == "HOLD"
        assert await asyncio.gather(*live) == [f"LIVE{i}" for i in range(6)]
        assert await asyncio.gather(*background) == [f"BG{i}" for i in range(3)]
        assert script.batches == [
            ["hold"],
            ["live0", "live1", "live2", "live3"],  # live first, though the background work waited longer
            ["live4", "live5", "bg0", "bg1"],  # background work fills the room that is left
            ["bg2"],  # and runs alone once no live request waits
        ]
        assert (batcher.items, batcher.background_items) == (10, 3)
    finally:
        script.release.set()
        batcher.close()


async def test_background_work_runs_at_once_when_nothing_live_waits():
    batches: list[list[int]] = []

    def double(items: list[int]) -> list[int]:
        batches.append(items)
        return [2 * i for i in items]

    batcher = MicroBatcher(double, max_batch=8, window_ms=0)
    try:
        with background_work():
            assert is_background()
            assert await asyncio.gather(*(batcher.submit(i) for i in range(3))) == [0, 2, 4]
        assert not is_background()  # the marker does not outlive its block
        assert await batcher.submit(5) == 10
        assert batcher.background_items == 3 and batcher.items == 4
    finally:
        batcher.close()


async def test_a_cancelled_background_caller_is_dropped():
    script = Scripted(asyncio.get_running_loop())
    batcher = MicroBatcher(script, max_batch=4, window_ms=0)
    try:
        first = asyncio.create_task(batcher.submit("hold"))
        await asyncio.wait_for(script.holding, DEADLINE_S)
        with background_work():
            gone = asyncio.create_task(batcher.submit("gone"))
            kept = asyncio.create_task(batcher.submit("kept"))
        await queued(batcher, 2)
        gone.cancel()
        script.release.set()
        assert (await first, await kept) == ("HOLD", "KEPT")
        assert script.batches == [["hold"], ["kept"]]
    finally:
        script.release.set()
        batcher.close()


async def test_each_caller_learns_how_long_it_waited_for_its_batch():
    """A request queued behind a running batch reports that wait apart (the benchmark subtracts it)."""
    script = Scripted(asyncio.get_running_loop())
    batcher = MicroBatcher(script, max_batch=4, window_ms=0)
    try:
        first = asyncio.create_task(batcher.submit_timed("hold"))
        await asyncio.wait_for(script.holding, DEADLINE_S)
        waiting_since = asyncio.get_running_loop().time()
        second = asyncio.create_task(batcher.submit_timed("behind"))
        await queued(batcher, 1)
        script.release.set()
        (out1, queue1), (out2, queue2) = await first, await second
        waited_ms = (asyncio.get_running_loop().time() - waiting_since) * 1000
        assert (out1, out2) == ("HOLD", "BEHIND")
        assert 0 <= queue1 < queue2 <= waited_ms + 1  # the second waited for the first batch, no longer
    finally:
        script.release.set()
        batcher.close()
