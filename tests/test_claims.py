"""Durable claims in storage (storage/claims.py), on SQLite and PostgreSQL, with the wall clock frozen: the take-over
of an expired claim is atomic across replicas, a renewed lease is never taken over, a released one is at once,
the first posted message id is kept, and open claims survive the pruning of old event ids."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from storage.claims import ANSWERED, ANSWERING, FAILED
from storage.database import Database
from tests.clock import FrozenClock

LEASE_S = 20.0


async def claim(db: Database, key: str, holder: str = "dead:1", lease_s: float = LEASE_S) -> bool:
    return await db.claim_work(key, holder=holder, lease_s=lease_s, source="slack", user_id="U1",
                               question="where is my card?", reference='{"channel": "C1", "ts": "1.0"}')


async def test_the_first_claim_records_the_work_and_later_deliveries_are_refused(database, frozen_clock):
    assert await claim(database, "Ev1")
    assert not await claim(database, "Ev1", holder="other:2")
    stored = await database.get_claim("Ev1")
    assert (stored.source, stored.user_id, stored.question, stored.state, stored.holder) == (
        "slack", "U1", "where is my card?", "claimed", "dead:1")
    assert stored.lease_expires_at == frozen_clock.later(LEASE_S)


async def test_claims_arriving_together_share_commits_and_each_key_is_won_once(database_url, database,
                                                                              frozen_clock):
    """A burst of claims (two deliveries of every event, on this replica and on another with its own engine) is
    written in a few transactions, not one each, and every event is claimed exactly once."""
    other = Database(database_url)
    try:
        keys = [f"EvBurst{i}" for i in range(100)]
        won = await asyncio.gather(*(claim(database, key, holder="A") for key in keys),
                                   *(claim(database, key, holder="A") for key in keys),
                                   *(claim(other, key, holder="B") for key in keys))
        per_key = [won[i] + won[len(keys) + i] + won[2 * len(keys) + i] for i in range(len(keys))]
        assert per_key == [1] * len(keys)
        assert database.claim_batch.claims == 2 * len(keys) and database.claim_batch.commits < len(keys) // 4
        assert {(await database.get_claim(key)).holder for key in keys} <= {"A", "B"}
    finally:
        await other.aclose()


async def test_two_replicas_claiming_one_burst_in_opposite_orders_never_deadlock(database_url, database,
                                                                                   frozen_clock):
    """Each replica's batch takes the keys in one order (on PostgreSQL two batches locking the same new keys in
    opposite orders would deadlock and fail every claim in them)."""
    other = Database(database_url)
    try:
        for round_ in range(3):
            keys = [f"EvOrder{round_}-{i:03d}" for i in range(200)]
            won = await asyncio.gather(*(claim(database, key, holder="A") for key in keys),
                                       *(claim(other, key, holder="B") for key in reversed(keys)))
            assert sum(won) == len(keys)  # no claim raised, each key won once
    finally:
        await other.aclose()


async def test_two_replicas_racing_for_expired_claims_each_claim_goes_to_exactly_one(database_url, database,
                                                                                       frozen_clock: FrozenClock):
    keys = [f"Ev{i}" for i in range(20)]
    for key in keys:
        assert await claim(database, key)
    frozen_clock.advance(LEASE_S + 1)
    other = Database(database_url)  # a second replica: its own engine and connections
    try:
        a = [database.take_over_claim(key, "A", LEASE_S) for key in keys]
        b = [other.take_over_claim(key, "B", LEASE_S) for key in keys]
        results = await asyncio.gather(*[x for pair in zip(a, b, strict=True) for x in pair])
    finally:
        await other.aclose()
    for key, won_a, won_b in zip(keys, results[0::2], results[1::2], strict=True):
        assert (won_a is None) != (won_b is None), key
        assert (await database.get_claim(key)).holder == (won_a or won_b).holder
    assert {(await database.get_claim(k)).attempts for k in keys} == {1}


async def test_a_claim_is_taken_over_only_once_its_lease_has_run_out(database, frozen_clock: FrozenClock):
    await claim(database, "Ev1")
    assert await database.expired_claims() == []
    assert await database.take_over_claim("Ev1", "B", LEASE_S) is None
    frozen_clock.advance(LEASE_S)
    assert await database.expired_claims() == ["Ev1"]
    taken = await database.take_over_claim("Ev1", "B", LEASE_S)
    assert (taken.holder, taken.state, taken.question) == ("B", "claimed", "where is my card?")
    assert await database.take_over_claim("Ev1", "C", LEASE_S) is None  # B's lease is fresh
    assert not await database.set_claim_state("Ev1", "dead:1", ANSWERING)  # the old holder lost it


async def test_renewed_leases_never_expire_under_a_long_answer(database, frozen_clock: FrozenClock):
    await claim(database, "Ev1", holder="A")
    assert await database.set_claim_state("Ev1", "A", ANSWERING)
    for _ in range(10):  # 10 leases' worth of time, renewed every third of a lease
        frozen_clock.advance(LEASE_S / 3)
        assert await database.renew_claims("A", LEASE_S) == 1
        assert await database.expired_claims() == []
        assert await database.take_over_claim("Ev1", "B", LEASE_S) is None
    assert await database.set_claim_state("Ev1", "A", ANSWERED)
    assert await database.renew_claims("A", LEASE_S) == 0  # answered: nothing left to renew


async def test_released_leases_are_taken_over_at_once(database, frozen_clock: FrozenClock):
    await claim(database, "Ev1", holder="A")
    await claim(database, "Ev2", holder="A")
    await database.set_claim_state("Ev2", "A", ANSWERED)
    assert await database.release_claims("A") == 1  # the answered one is not work left
    assert await database.expired_claims() == ["Ev1"]
    assert (await database.take_over_claim("Ev1", "B", LEASE_S)).holder == "B"


async def test_finished_claims_are_neither_swept_nor_renewed(database, frozen_clock: FrozenClock):
    await claim(database, "Ev1", holder="A")
    await claim(database, "Ev2", holder="A")
    await database.set_claim_state("Ev1", "A", ANSWERED)
    await database.set_claim_state("Ev2", "A", FAILED, "gave up")
    frozen_clock.advance(LEASE_S * 2)
    assert await database.expired_claims() == []
    assert await database.take_over_claim("Ev2", "B", LEASE_S) is None
    assert not await database.set_claim_state("Ev1", "A", FAILED)  # no going back
    assert await database.oldest_open_claim_age_s() == 0.0


async def test_the_first_posted_message_id_is_kept(database, frozen_clock):
    await claim(database, "Ev1")
    assert await database.record_claim_post("Ev1", "1700000000.000001")
    assert not await database.record_claim_post("Ev1", "1700000000.000002")
    assert (await database.get_claim("Ev1")).answer_ref == "1700000000.000001"


async def test_the_oldest_unanswered_claim_age(database, frozen_clock: FrozenClock):
    assert await database.oldest_open_claim_age_s() == 0.0
    await claim(database, "Ev1", holder="A")
    frozen_clock.advance(30)
    await claim(database, "Ev2", holder="A")
    frozen_clock.advance(15)
    assert await database.oldest_open_claim_age_s() == 45.0
    await database.set_claim_state("Ev1", "A", ANSWERED)
    assert await database.oldest_open_claim_age_s() == 15.0


async def test_pruning_old_event_ids_keeps_the_claims_not_answered_yet(database, frozen_clock: FrozenClock):
    await database.claim_event("plain-marker")
    await claim(database, "open")
    await claim(database, "done", holder="A")
    await database.set_claim_state("done", "A", ANSWERED)
    frozen_clock.advance(7200)
    assert await database.prune_events(frozen_clock.utcnow() - timedelta(hours=1)) == 2
    assert await database.get_claim("open") is not None
    assert await database.get_claim("done") is None
