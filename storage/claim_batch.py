"""Group commit for claims: the claims that arrive while one transaction commits go in the next one together.

Every delivery's claim is written before the front end acknowledges it, so a burst of deliveries is a burst of
small write transactions; on SQLite each commit is a write-ahead-log sync taken one at a time, and 200 of them
in a row cost the last acknowledgement most of a second. Here one writer task drains a queue: each round inserts
every claim that has queued (up to ``max_batch``) with one statement and one commit, and hands each caller its own
outcome. A quiet replica's claim goes in at once, alone; under load, claims share commits. Two deliveries of one
event in the same batch behave as in two transactions: the first inserts, the second finds the row (False).

A caller that stops waiting (its bound ran out) before its batch starts is left out of it; once the batch is
being written, as with any timed-out insert, the row may still land, which bot/conversation/durable.py allows
for ("unsure" claims).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

Insert = Callable[[AsyncConnection, list[dict[str, Any]]], Awaitable[set[str]]]  # rows -> the keys inserted


class ClaimBatch:
    def __init__(self, engine: AsyncEngine, insert: Insert, max_batch: int = 256):
        self.engine = engine
        self.insert = insert
        self.max_batch = max_batch
        self._queue: list[tuple[dict[str, Any], asyncio.Future]] = []
        self._writer: asyncio.Task | None = None
        self.commits = 0  # transactions written (a figure for benchmarks and tests)
        self.claims = 0  # claims written in them

    async def claim(self, row: dict[str, Any]) -> bool:
        """True when this claim was inserted, False when an earlier one holds the key; raises what the database
        raised for its transaction."""
        outcome = asyncio.get_running_loop().create_future()
        self._queue.append((row, outcome))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write(), name="claim-batch")
        return await outcome

    async def _write(self) -> None:
        while self._queue:
            batch, self._queue = self._queue[:self.max_batch], self._queue[self.max_batch:]
            batch = [(row, outcome) for row, outcome in batch if not outcome.done()]  # not the given-up ones
            if not batch:
                continue
            try:
                async with self.engine.begin() as conn:
                    inserted = await self.insert(conn, [row for row, _ in batch])
            except BaseException as exc:  # every claim of the batch shares its transaction's fate
                for _, outcome in batch:
                    if not outcome.done():
                        outcome.set_exception(exc if isinstance(exc, Exception)
                                              else ConnectionError("the claim writer was stopped"))
                if not isinstance(exc, Exception):
                    raise
                continue
            self.commits += 1
            self.claims += len(batch)
            for row, outcome in batch:
                won = row["key"] in inserted
                inserted.discard(row["key"])  # a repeat of the key in this batch came second
                if not outcome.done():
                    outcome.set_result(won)

    async def aclose(self) -> None:
        """Let the batch being written finish (its callers' rows land)."""
        if self._writer is not None and not self._writer.done():
            await asyncio.wait({self._writer}, timeout=5)
