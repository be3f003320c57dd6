"""Durable claims on the conversation side: a question acknowledged by this replica is recorded with its claim
(redacted, with where to answer), and moves `claimed -> answering -> answered` (or `failed`, with a reason) while
this replica holds its lease. If the replica dies, its leases run out and another replica's sweeper
(bot/conversation/sweeper.py) takes the question over and answers it, unless the answer was already posted.

One `ClaimBook` per replica (per Runtime): its holder id, the heartbeat that renews every lease it holds with one
statement, and the figures /metrics shows. Every database call here fails open: while the database is
unreachable a question is still answered (it is then only as durable as the process).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import uuid
from typing import Any

from llm.redact import redact
from storage.claims import ANSWERED, ANSWERING, FAILED, Claim

log = logging.getLogger(__name__)

SETTLE_S = 3.0  # a claim not written by the ack (a slow database) may take this long in all before the answer goes out
LATE = ("Sorry for the delay: I could not answer your question in time. Please ask it again and I will answer "
        "right away.")
GAVE_UP = "gave up: older than ANSWER_GIVE_UP_S"


class ClaimBook:
    def __init__(self, db: Any, settings: Any):
        self.db = db
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.lease_s = float(settings.claim_lease_s)
        self.give_up_s = float(settings.answer_give_up_s)
        self.held: set[str] = set()  # keys of the claims this replica works on now
        self.unsure: set[str] = set()  # of those, claims whose insert timed out: it may or may not have landed
        self.pending: dict[str, asyncio.Future] = {}  # of those, inserts still running after the ack (`settle`)
        self.taken_over = 0  # claims of a dead (or stopped) replica this one took over
        self.late_answers = 0  # questions answered after a take-over
        self.give_ups = 0  # questions older than ANSWER_GIVE_UP_S that got the apology instead
        self.already_posted = 0  # take-overs that found the answer posted and did not post it again

    # -- a question of this replica's ----------------------------------------------------------------------

    async def claim(self, key: str, message: Any, reference: dict[str, Any]) -> bool:
        """The de-duplication claim that also records the work. The front end's ack waits for it only as long
        as the database's request bound (1 s): a claim still being written then stays pending and
        the answer waits for it (`settle`) before it goes out, so a slow database costs a later answer rather than
        a duplicate one. Raises when the database cannot be reached: the caller then answers unclaimed, but the
        insert may still land, so the key is kept as held and unsure: the heartbeat renews that row while this
        replica answers and the answer marks it answered, rather than leaving it for another replica's sweeper to
        answer a second time."""
        if key in self.held:  # this replica works on that delivery already (a re-delivery to it)
            return False
        settle = not self.db.hanging  # while the database hangs, waiting longer only delays the answer
        insert = asyncio.ensure_future(self.db.claim_work(
            key, holder=self.holder, lease_s=self.lease_s, source=message.source, user_id=message.user,
            question=redact(message.text), timeout_s=SETTLE_S if settle else None,
            reference=json.dumps(reference | {"conversation": message.conversation, "link": message.link},
                                 separators=(",", ":"))))
        self.held.add(key)
        self.unsure.add(key)
        done, _ = await asyncio.wait({insert}, timeout=self.db.request_timeout_s)
        if not done:
            self.pending[key] = insert
            return True
        if insert.cancelled():
            raise ConnectionError("the claim insert was cancelled")
        if insert.exception() is not None:
            raise insert.exception()
        return self._decided(key, insert.result())

    async def settle(self, key: str) -> bool | None:
        """The outcome of a claim still pending at the ack: True (this replica's), False (another delivery's: do
        not answer), None (the database did not answer within SETTLE_S: answer unclaimed). True for any other."""
        insert = self.pending.pop(key, None)
        if insert is None:
            return True
        await asyncio.wait({insert})  # its own bound (SETTLE_S) ends it; cancelling this task still propagates
        if insert.cancelled() or insert.exception() is not None:  # the database being down must not cost the answer
            reason = "cancelled" if insert.cancelled() else type(insert.exception()).__name__
            log.warning("the claim of %s was not written within %.0f s (%s); answering it unclaimed", key, SETTLE_S,
                        reason)
            return None
        return self._decided(key, insert.result())

    def _decided(self, key: str, won: bool) -> bool:
        """The claim's insert answered: this replica's (held, sure) or another delivery's (not held)."""
        self.unsure.discard(key)
        if not won:
            self.held.discard(key)
        return won

    def adopt(self, claim: Claim) -> None:
        """A claim this replica took over."""
        self.held.add(claim.key)
        self.taken_over += 1

    async def answering(self, key: str) -> bool:
        """Mark the claim `answering` and renew its lease; also a check that it is still ours (False: another
        replica took it over while this one stalled past its lease, so this one must not answer). Called before
        the model runs and again right before posting. True when the database is down (at once for a claim
        that timed out while the database still hangs)."""
        if key in self.unsure and self.db.hanging:  # its claim timed out and the database still hangs: no wait
            return True
        mine = await self._fail_open(self.db.set_claim_state(key, self.holder, ANSWERING, lease_s=self.lease_s),
                                     True)
        if mine or key not in self.unsure:
            return mine
        # Answered unclaimed: it goes on unless its row landed and another replica has taken it over since.
        claim = await self._fail_open(self.db.get_claim(key), None)
        return claim is None or claim.holder == self.holder

    async def finish(self, key: str, *, reason: str | None = None, message_id: str | None = None) -> None:
        """`answered` (with the posted message's id, in the same statement), or `failed` with `reason`; the claim
        is no longer this replica's work."""
        state = FAILED if reason else ANSWERED
        try:
            await self._fail_open(self.db.set_claim_state(key, self.holder, state, reason, answer_ref=message_id),
                                  False)
        finally:
            self.drop(key)

    async def abandon(self, key: str) -> None:
        """This replica will not answer a claim it holds after all (its answer could not start): end its lease
        now, so another replica's sweeper answers it rather than this replica renewing it forever."""
        if key in self.pending:
            await self.settle(key)  # an insert still running could land after the release
        if key in self.held:
            self.drop(key)
            await self._fail_open(self.db.release_claims(self.holder, [key]), 0)

    def drop(self, key: str) -> None:
        self.held.discard(key)
        self.unsure.discard(key)
        insert = self.pending.pop(key, None)
        if insert is not None:  # nobody waits for it now: its outcome is not an error to report
            insert.add_done_callback(lambda done: done.cancelled() or done.exception())

    # -- the replica's leases --------------------------------------------------------------------------------

    async def heartbeat(self) -> int:
        """Renew every open claim this replica holds (one statement); returns how many."""
        if not self.held:
            return 0
        return await self._fail_open(self.db.renew_claims(self.holder, self.lease_s), 0)

    async def run_heartbeat(self) -> None:
        """Renew the leases every third of a lease, until cancelled."""
        while True:
            await asyncio.sleep(self.lease_s / 3)
            await self.heartbeat()

    async def release(self) -> int:
        """End the leases of the work this replica did not finish (at shutdown), so another replica takes it over
        at once; returns how many."""
        released = await self._fail_open(self.db.release_claims(self.holder), 0)
        if released:
            log.warning("shutdown: released %d unfinished questions for another replica to answer", released)
        self.held.clear()
        return released

    async def _fail_open(self, call, default):
        try:
            return await call
        except Exception as exc:  # noqa: BLE001 - the database being down must not cost the answer
            first_line = (str(exc).splitlines() or [""])[0][:200]
            log.warning("claim bookkeeping failed (%s: %s)", type(exc).__name__, first_line)
            return default


def claims_of(runtime: Any) -> ClaimBook:
    """The replica's ClaimBook, made on first use and kept on the runtime."""
    book = runtime.__dict__.get("claim_book")
    if book is None:
        book = runtime.__dict__["claim_book"] = ClaimBook(runtime.db, runtime.settings)
    return book
