"""An answer streamed into a Slack thread as the model writes it (chat.startStream / appendStream / stopStream
through bolt's say_stream): the conversation core's sink for Slack (bot/conversation/relay.py).

Slack's API calls happen as deltas arrive, `LIVE_BUFFER` characters at a time. If Slack refuses half-way, the
rest is kept and the channel finishes the answer another way: an expired stream with chat.update of its message,
anything else by posting the whole answer.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from slack_sdk.errors import SlackApiError, SlackRequestError

log = logging.getLogger(__name__)

LIVE_BUFFER = 48  # characters gathered before an API call: a sentence or two of a grounded answer
PIECE = 256  # a long delta (a model that cannot stream sends its whole answer at once) goes out in pieces this size


class SlackStream:
    def __init__(self, streamer: Any):
        self.streamer = streamer
        self.text = ""  # everything appended, sent or not
        self.broken: str | None = None  # Slack's error, once a call failed
        self.finished = False

    @property
    def ts(self) -> str | None:
        return self.streamer.ts

    async def append(self, text: str) -> None:
        self.text += text
        if self.broken is not None:
            return
        try:
            for piece in re.findall(rf".{{1,{PIECE}}}(?:\s+|$)|.{{{PIECE}}}", text, flags=re.S) or [text]:
                await self.streamer.append(markdown_text=piece)
        except (SlackApiError, SlackRequestError) as exc:
            self.broken = _error(exc)
            log.warning("chat stream %s failed half-way (%s); the answer will be finished another way", self.ts,
                        self.broken)

    async def stop(self, blocks: list[dict] | None) -> bool:
        """Finish the stream with `blocks` under it; False when Slack refused (the caller finishes it)."""
        self.finished = True
        if self.broken is None:
            try:
                await self.streamer.stop(blocks=blocks)
                return True
            except (SlackApiError, SlackRequestError) as exc:
                self.broken = _error(exc)
        return False


def _error(exc: Exception) -> str:
    return exc.response.get("error") if isinstance(exc, SlackApiError) else str(exc)
