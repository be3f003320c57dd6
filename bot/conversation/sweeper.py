"""The sweeper every replica runs: it takes over the questions whose holder died (their lease ran out before they
were answered) and answers them, once.

Each round reads the expired open claims of the front ends this replica serves, takes each over with one
conditional UPDATE (exactly one replica wins, storage/claims.py) and hands it to that front end's resumer, which
rebuilds the channel from the stored reference and calls `resume`. Before anything is posted, `resume` checks
whether the answer already went out: the recorded message id, then the thread where the front end's API shows it.
So a duplicate can only come from a replica dying between its post and the record of that post. A question older
than ANSWER_GIVE_UP_S is not answered late: the customer gets a short apology asking them to ask again, once.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from bot.conversation.core import Channel, ConversationCore, Kind, Message, Reply
from bot.conversation.durable import GAVE_UP, LATE, claims_of
from storage.claims import Claim

log = logging.getLogger(__name__)

Resumer = Callable[[Claim], Awaitable[None]]  # a front end's: answers a taken-over claim in its own channel
BATCH = 50  # claims taken over per round at most


class Sweeper:
    def __init__(self, runtime: Any, resumers: dict[str, tuple[Resumer, Any]], interval_s: float | None = None):
        """`resumers`: front end ("slack", "teams") -> (its resumer, its bot.inflight.Work, which tracks the
        answers so a shutdown waits for them)."""
        self.runtime = runtime
        self.book = claims_of(runtime)
        self.resumers = resumers
        self.interval_s = runtime.settings.sweep_interval_s if interval_s is None else interval_s

    async def sweep(self) -> list[Claim]:
        """One round: take over every expired claim this replica can answer and start answering each (a tracked
        task); returns the claims taken over. Raises when the database cannot be read."""
        db, taken = self.runtime.db, []
        for key in await db.expired_claims(BATCH):
            claim = await db.take_over_claim(key, self.book.holder, self.book.lease_s)
            if claim is None:
                continue  # another replica won it, or its holder finished it meanwhile
            if claim.source not in self.resumers:
                await db.release_claims(self.book.holder, [claim.key])  # a replica serving that front end will
                continue
            self.book.adopt(claim)
            log.warning("taking over %s question %s (attempt %d, %.0f s old): its replica stopped answering",
                        claim.source, claim.key, claim.attempts, claim.age_s(db.now()))
            resumer, work = self.resumers[claim.source]
            work.spawn(self._resume(resumer, claim), name=f"resume-{claim.key}")
            taken.append(claim)
        return taken

    async def _resume(self, resumer: Resumer, claim: Claim) -> None:
        try:
            await resumer(claim)
        except Exception:  # noqa: BLE001 - the claim's lease runs out and a later round tries again
            log.exception("could not resume %s question %s", claim.source, claim.key)
            self.book.drop(claim.key)


async def resume(core: ConversationCore, claim: Claim, channel: Channel) -> None:
    """Answer a question taken over from a replica that died, unless its answer already went out; past
    ANSWER_GIVE_UP_S, apologise instead. Never posts twice what was recorded."""
    book = claims_of(core.runtime)
    posted = claim.answer_ref or await _find_posted(channel)
    if posted:
        log.info("question %s was already answered (message %s); not posting it again", claim.key, posted)
        book.already_posted += 1
        await book.finish(claim.key, message_id=posted)
        return
    if claim.age_s(core.runtime.db.now()) > book.give_up_s:
        message_id = await channel.send(Reply(Kind.APOLOGY, LATE))  # raises: retried later
        await book.finish(claim.key, reason=GAVE_UP, message_id=message_id)
        book.give_ups += 1
        return
    where = json.loads(claim.reference)
    message = Message(source=claim.source, user=claim.user_id, text=claim.question, delivery=claim.key,
                      conversation=where.get("conversation"), link=where.get("link"))
    if await core.respond(message, channel, resumed=True):
        book.late_answers += 1


async def _find_posted(channel: Channel) -> str | None:
    find = getattr(channel, "find_posted", None)
    if find is None:
        return None
    try:
        return await find()
    except Exception as exc:  # noqa: BLE001 - the check is best effort: the recorded id is the main guard
        log.info("could not read the thread to check for an earlier answer: %s", exc)
        return None
