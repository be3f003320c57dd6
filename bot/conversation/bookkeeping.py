"""Bookkeeping an answer can go without (dialogue turns, hand-off cases, conversation context): bounded, and
failing open, so a database that is down or hangs costs the customer at most one short wait, never the answer."""

from __future__ import annotations

import logging
from collections.abc import Coroutine
from typing import Any

log = logging.getLogger(__name__)
BOOKKEEPING_TIMEOUT_S = 1.0  # a database that hangs costs a customer's answer at most this, per step
FAILED = object()  # a `default` that tells a failure apart from a call that returned None


async def fail_open(db: Any, what: str, call: Coroutine[Any, Any, Any], default: Any = None) -> Any:
    """`call`'s result, or `default` when the database fails or does not answer within BOOKKEEPING_TIMEOUT_S
    (at once while it is known to hang: `Database.bounded`)."""
    try:
        return await db.bounded(call, BOOKKEEPING_TIMEOUT_S)
    except Exception as exc:  # noqa: BLE001 - down, hanging or refusing: answer without it
        log.warning("could not %s (%s); answering without it", what, type(exc).__name__)
        return default
