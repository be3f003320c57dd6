"""Deltas of a streamed answer on their way to the front end: held until the answer is long enough to stream
(STREAM_MIN_CHARS), then streamed as they arrive; a short answer is posted whole, as before.

A channel that can stream has `open_stream() -> sink | None` (None: not here, e.g. a Teams group chat, or the
front end refused); a sink has `append(text)` and is finished by the channel's `send` of the reply carrying it.
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)


class Relay:
    def __init__(self, channel: Any, min_chars: int):
        self.opener = getattr(channel, "open_stream", None)
        self.min_chars = min_chars
        self.held: list[str] = []
        self.sink: Any = None

    async def send(self, delta: str) -> None:
        if self.sink is not None:
            await self.sink.append(delta)
            return
        self.held.append(delta)
        if self.opener is None or sum(map(len, self.held)) <= self.min_chars:
            return
        try:
            self.sink = await self.opener()
        except Exception as exc:  # noqa: BLE001 - the answer is posted whole instead
            log.info("could not open a stream (%s: %s); posting the answer whole", type(exc).__name__, exc)
        if self.sink is None:
            self.opener = None
            return
        await self.sink.append("".join(self.held))
