"""Work a front end does after its ack (Slack listeners, Teams answers): every task is tracked so a shutdown can
wait for it.

Bolt acknowledges an event, then runs its listener in a task of its own (`asyncio.ensure_future`), so the
HTTP server's graceful shutdown knows nothing of it. `tracked(listener)` registers the listener's task in
`Work` as soon as the task runs; Teams accepts an activity and answers in a task it starts with `spawn`.
`drain(deadline)` waits for all of them, and cancels what is left at the deadline. The same object counts the
answers sent without a de-duplication claim (the database was unreachable), and is a Prometheus collector.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

log = logging.getLogger(__name__)


class Work:
    def __init__(self, channel: str = "slack", noun: str = "listeners") -> None:
        self.channel = channel  # the front end, in the metric names: bankbot_<channel>_<noun>_in_flight
        self.noun = noun
        self.tasks: set[asyncio.Task] = set()  # listener tasks running now (a strong reference keeps them alive)
        self.started = 0
        self.finished = 0
        self.cancelled_at_shutdown = 0
        self.unclaimed_answers = 0  # answered although the de-duplication claim failed (database down)

    @property
    def in_flight(self) -> int:
        return len(self.tasks)

    def tracked(self, listener: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        """`listener` wrapped so its task is tracked; bolt still sees its argument names (it unwraps)."""
        @functools.wraps(listener)
        async def run_tracked(**kwargs: Any) -> Any:
            task = asyncio.current_task()
            if task is None or task in self.tasks:  # a listener awaited inside another tracked one
                return await listener(**kwargs)
            self.tasks.add(task)
            self.started += 1
            try:
                return await listener(**kwargs)
            finally:
                self.tasks.discard(task)
                self.finished += 1

        return run_tracked

    def spawn(self, work: Coroutine[Any, Any, Any], name: str) -> asyncio.Task:
        """Run `work` in a task of its own, tracked until it ends."""
        task = asyncio.create_task(work, name=name)
        self.tasks.add(task)
        self.started += 1

        def done(finished: asyncio.Task) -> None:
            self.tasks.discard(finished)
            self.finished += 1
            if not finished.cancelled() and finished.exception() is not None:
                log.error("%s task %s failed", self.channel, name, exc_info=finished.exception())

        task.add_done_callback(done)
        return task

    async def drain(self, deadline: float) -> int:
        """Wait until no listener runs or the loop clock passes `deadline`; cancel the rest. Returns how many
        were cancelled."""
        await asyncio.sleep(0)  # a task created just before this call (bolt acked, then spawned) starts first
        loop = asyncio.get_running_loop()
        while self.tasks and (left := deadline - loop.time()) > 0:
            log.info("shutdown: waiting for %d %s answers in flight (%.1f s left)", len(self.tasks), self.channel,
                     left)
            await asyncio.wait(set(self.tasks), timeout=left)
            await asyncio.sleep(0)  # tasks a finishing listener started, if any, get registered
        left_over = set(self.tasks)
        for task in left_over:
            task.cancel()
        if left_over:
            await asyncio.gather(*left_over, return_exceptions=True)
            self.cancelled_at_shutdown += len(left_over)
            log.warning("shutdown: %d %s answers were still running at the deadline and were cancelled",
                        len(left_over), self.channel)
        return len(left_over)

    def collect(self) -> Iterator[Metric]:
        """Prometheus collector: register it in a CollectorRegistry."""
        prefix, name = f"bankbot_{self.channel}", self.channel.capitalize()
        yield GaugeMetricFamily(f"{prefix}_{self.noun}_in_flight",
                                f"{name} {self.noun} running after their ack", value=self.in_flight)
        yield CounterMetricFamily(f"{prefix}_unclaimed_answers",
                                  f"{name} messages answered without a de-duplication claim because the database "
                                  "was unreachable (a re-delivery in that window may be answered twice)",
                                  value=self.unclaimed_answers)
        yield CounterMetricFamily(f"{prefix}_{self.noun}_cancelled_at_shutdown",
                                  f"{name} {self.noun} cancelled at the shutdown deadline",
                                  value=self.cancelled_at_shutdown)


class TrackingRegistrar:
    """Stands in for the AsyncApp while listeners register (`app.event(...)(fn)`, `app.command(...)(fn)`),
    so every listener function is registered wrapped by `work.tracked`."""

    def __init__(self, app: Any, work: Work):
        self._app = app
        self._work = work

    def __getattr__(self, name: str) -> Any:
        register = getattr(self._app, name)

        @functools.wraps(register)
        def decorator_factory(*args: Any, **kwargs: Any) -> Callable:
            decorate = register(*args, **kwargs)
            return lambda listener: decorate(self._work.tracked(listener))

        return decorator_factory
