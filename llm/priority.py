"""Live requests before background work: a marker that benchmark runs and health checks set around their calls.

The marker is a ContextVar, so it follows the call into every task the caller starts (asyncio copies the
context into a new task) and into threads started with asyncio.to_thread, and never leaks into other requests.

    with background_work():
        await adapter.generate(question, record=False)  # queued behind live traffic where the model batches

An adapter that queues work (custom's micro-batcher) reads is_background() when a call arrives.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_background: ContextVar[bool] = ContextVar("bankbot_background_work", default=False)


@contextmanager
def background_work() -> Iterator[None]:
    """Everything called inside, and in the tasks it starts, is background work: it yields to live requests."""
    token = _background.set(True)
    try:
        yield
    finally:
        _background.reset(token)


def is_background() -> bool:
    """True inside background_work(): a benchmark or health-check call, not a customer waiting."""
    return _background.get()
