"""The sweeper (bot/conversation/sweeper.py) over the real Slack app, the fake Slack Web API and a real database
(SQLite and PostgreSQL), with the storage clock frozen: a question whose replica died is answered by another,
once; two sweepers racing answer it once; an answer already posted (recorded, or only visible in the thread) is
not posted again; past ANSWER_GIVE_UP_S the customer gets one apology; a long answer keeps its lease; a stopped
replica releases its leases; a starting replica sweeps before it serves."""

from __future__ import annotations

import asyncio
import json
from contextlib import asynccontextmanager
from dataclasses import dataclass

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from bot.conversation.core import Message
from bot.conversation.durable import LATE, ClaimBook, claims_of
from bot.conversation.sweeper import Sweeper
from bot.runtime import Runtime
from bot.server import SHUTDOWN_DEADLINE, SLACK_WORK, SWEPT, build_web_app, resumers
from bot.settings import Settings
from storage.database import Database
from tests.clock import FrozenClock
from tests.fake_slack import BOT_ID, BOT_USER_ID, FakeSlack
from tests.scripted import Scripted, ScriptedAdapter, builders
from tests.slack_helpers import SECRET, event_body, mention, message, signed_headers
from tests.storage_helpers import wait_for_state

LEASE_S = 20.0
CHANNEL = "C0SWEEP"


@dataclass
class Replica:
    app: web.Application
    runtime: Runtime
    server: TestServer
    model: ScriptedAdapter

    @property
    def book(self) -> ClaimBook:
        return claims_of(self.runtime)

    @property
    def events_url(self) -> str:
        return str(self.server.make_url("/slack/events"))

    async def sweep(self) -> list:
        """One sweep, and the answers it started, to their end."""
        taken = await Sweeper(self.runtime, resumers(self.app)).sweep()
        await asyncio.sleep(0)
        await asyncio.gather(*self.app[SLACK_WORK].tasks)
        return taken


@asynccontextmanager
async def replica(url: str, fake: FakeSlack, *, gate: asyncio.Event | None = None, wait_swept: bool = True,
                  on_response=None, **overrides):
    """One replica on `url`; it sweeps only when a test says so (and once at start-up). `on_response(request)`
    runs in each request's own task right before its response is sent."""
    model = ScriptedAdapter("custom", default=Scripted("card news", gate=gate))
    settings = Settings(**{"database_url": url, "slack_bot_token": "xoxb-test", "slack_signing_secret": SECRET,
                           "slack_api_url": fake.api_url, "llm_model_version": "custom", "fallback_order": "custom",
                           "benchmark_every_n": 0, "rate_limit_user_per_min": 0, "rate_limit_api_per_min": 0,
                           "show_model_footer": False, "claim_lease_s": LEASE_S, "sweep_interval_s": 3600} | overrides)
    runtime = await Runtime.create(settings, builders=builders(model))
    app = build_web_app(runtime)
    if on_response is not None:
        app.on_response_prepare.append(lambda request, response: on_response(request))
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    if wait_swept:
        await app[SWEPT].wait()  # the start-up sweep is done: a test's sweeps are the only ones
    try:
        yield Replica(app, runtime, server, model)
    finally:
        await server.close()
        await runtime.aclose()


@asynccontextmanager
async def fake_slack():
    fake = await FakeSlack().start()
    try:
        yield fake
    finally:
        await fake.stop()


async def plant(db: Database, key: str, ts: str, *, holder: str = "dead:1") -> None:
    """The claim a replica made before it died: acknowledged, recorded, never answered."""
    where = {"channel": CHANNEL, "ts": ts, "thread_ts": ts, "direct": False}
    assert await db.claim_work(key, holder=holder, lease_s=LEASE_S, source="slack", user_id="U1",
                               question="where is my card?", reference=json.dumps(where))


def posts_in(fake: FakeSlack, ts: str) -> list[dict]:
    return [p for p in fake.posts() if p.get("thread_ts") == ts]


async def test_a_question_whose_replica_died_is_answered_by_another_once(database_url, database, frozen_clock):
    await plant(database, "EvDead", "1800000000.000100")
    async with fake_slack() as fake, replica(database_url, fake) as b:
        assert await b.sweep() == []  # the lease has not run out: its holder may still be working
        frozen_clock.advance(LEASE_S + 1)
        [taken] = await b.sweep()
        assert (taken.key, taken.holder, taken.attempts) == ("EvDead", b.book.holder, 1)
        [answer] = posts_in(fake, "1800000000.000100")
        assert answer["text"].startswith("card news") and b.model.prompts == ["where is my card?"]
        frozen_clock.advance(LEASE_S + 1)
        assert await b.sweep() == []
        stored = await database.get_claim("EvDead")
        assert (stored.state, stored.answer_ref) == ("answered", fake.messages[CHANNEL][-1]["ts"])
        assert (b.book.taken_over, b.book.late_answers) == (1, 1)
    assert len(fake.posts()) == 1


@pytest.mark.parametrize("event", [mention(f"<@{BOT_USER_ID}> my card 4111 1111 1111 1111 is gone", channel=CHANNEL),
                                   message("my card 4111 1111 1111 1111 is gone", channel="D0SWEEP")],
                         ids=["mention", "direct message"])
async def test_a_question_is_claimed_before_slack_gets_its_ack(database_url, database, frozen_clock, event):
    """Slack never re-delivers an acknowledged event, so the claim (the question, redacted, and where to answer)
    is in the database when the ack goes out: read from the ack's own task, before its response is sent."""
    at_ack = []

    async def read_claim(request) -> None:
        if request.path == "/slack/events":
            at_ack.append(await database.get_claim("EvAck"))

    gate = asyncio.Event()  # the model answers only once the test has looked
    async with fake_slack() as fake, replica(database_url, fake, gate=gate, on_response=read_claim) as a:
        async with aiohttp.ClientSession() as http:
            body = event_body(event, "EvAck")
            async with http.post(a.events_url, data=body, headers=signed_headers(body)) as response:
                assert response.status == 200
        [claim] = at_ack
        assert claim is not None and claim.state == "claimed" and claim.holder == a.book.holder
        assert "4111" not in claim.question and claim.question.startswith("my card")
        assert json.loads(claim.reference)["ts"] == event["ts"]
        gate.set()
        await fake.wait_for(lambda f: len(f.posts()) == 1, within_s=30)
        await asyncio.gather(*a.app[SLACK_WORK].tasks)
        assert (await database.get_claim("EvAck")).state == "answered"


async def test_a_redelivery_to_the_replica_working_on_it_keeps_the_claim_held(database, frozen_clock):
    book = ClaimBook(database, Settings(claim_lease_s=LEASE_S))
    question = Message(source="slack", user="U1", text="where is my card?", delivery="EvTwice")
    where = {"channel": CHANNEL, "ts": "1800000000.000400", "thread_ts": "1800000000.000400"}
    assert await book.claim("EvTwice", question, where)
    assert not await book.claim("EvTwice", question, where)  # the same delivery again, to the same replica
    assert book.held == {"EvTwice"} and not book.pending
    frozen_clock.advance(LEASE_S - 1)
    assert await book.heartbeat() == 1  # still its work: the lease keeps being renewed


async def test_two_sweepers_racing_for_one_expired_claim_answer_it_once(database_url, database, frozen_clock):
    await plant(database, "EvRace", "1800000000.000200")
    async with fake_slack() as fake, replica(database_url, fake) as a, replica(database_url, fake) as b:
        frozen_clock.advance(LEASE_S + 1)
        taken_a, taken_b = await asyncio.gather(a.sweep(), b.sweep())
        assert len(taken_a) + len(taken_b) == 1
        assert len(posts_in(fake, "1800000000.000200")) == 1
        assert a.book.taken_over + b.book.taken_over == 1


async def test_an_answer_posted_but_not_recorded_is_seen_in_the_thread_and_not_posted_again(database_url, database,
                                                                                            frozen_clock):
    await plant(database, "EvPosted", "1800000000.000300")
    async with fake_slack() as fake, replica(database_url, fake) as b:
        fake.seed_message(CHANNEL, user="U1", text="where is my card?", ts="1800000000.000300")
        fake.seed_message(CHANNEL, user=BOT_USER_ID, bot_id=BOT_ID, text="card news", ts="1800000000.000301",
                          thread_ts="1800000000.000300")  # the dead replica posted it, then died
        frozen_clock.advance(LEASE_S + 1)
        [_] = await b.sweep()
        assert fake.posts() == [] and b.model.prompts == []
        stored = await database.get_claim("EvPosted")
        assert (stored.state, stored.answer_ref) == ("answered", "1800000000.000301")
        assert b.book.already_posted == 1


async def test_a_recorded_answer_is_not_posted_again(database_url, database, frozen_clock):
    await plant(database, "EvRecorded", "1800000000.000400")
    await database.record_claim_post("EvRecorded", "1800000000.000401")  # posted and recorded, then it died
    async with fake_slack() as fake, replica(database_url, fake) as b:
        frozen_clock.advance(LEASE_S + 1)
        [_] = await b.sweep()
        assert fake.posts() == [] and b.model.prompts == []
        assert (await database.get_claim("EvRecorded")).state == "answered"


async def test_past_answer_give_up_the_customer_gets_one_apology_and_no_answer(database_url, database,
                                                                                frozen_clock: FrozenClock):
    await plant(database, "EvOld", "1800000000.000500")
    async with fake_slack() as fake, replica(database_url, fake, answer_give_up_s=600) as b:
        frozen_clock.advance(601)
        [_] = await b.sweep()
        frozen_clock.advance(601)
        assert await b.sweep() == []
        [apology] = posts_in(fake, "1800000000.000500")
        assert apology["text"] == LATE and b.model.prompts == []
        stored = await database.get_claim("EvOld")
        assert stored.state == "failed" and stored.answer_ref == apology_ts(fake)
        assert (b.book.give_ups, b.book.late_answers) == (1, 0)


def apology_ts(fake: FakeSlack) -> str:
    return fake.messages[CHANNEL][-1]["ts"]


async def test_a_long_answer_renews_its_lease_and_is_never_taken_over(database_url, database,
                                                                      frozen_clock: FrozenClock):
    gate = asyncio.Event()
    async with (fake_slack() as fake, replica(database_url, fake, gate=gate) as a, replica(database_url, fake) as b,
                aiohttp.ClientSession() as http):
        event = mention(f"<@{BOT_USER_ID}> where is my card?", channel=CHANNEL)
        body = event_body(event)
        async with http.post(a.events_url, data=body.encode(), headers=signed_headers(body)) as response:
            assert response.status == 200
        key = json.loads(body)["event_id"]
        await wait_for_state(database, key, "answering")
        for _ in range(9):  # three leases' worth of time, renewed every third of a lease
            frozen_clock.advance(LEASE_S / 3)
            assert await a.book.heartbeat() == 1
            assert await b.sweep() == []
        gate.set()
        await fake.wait_for(lambda f: posts_in(f, event["ts"]))
        await wait_for_state(database, key, "answered")
        frozen_clock.advance(LEASE_S * 2)
        assert await b.sweep() == []
        assert len(posts_in(fake, event["ts"])) == 1 and b.model.prompts == []


async def test_a_stopped_replica_releases_its_unfinished_leases_for_another_at_once(database_url, database,
                                                                                   frozen_clock):
    async with (fake_slack() as fake, replica(database_url, fake) as b, aiohttp.ClientSession() as http):
        async with replica(database_url, fake, gate=asyncio.Event()) as a:  # its model never answers
            a.model.default_timeout_s = 300  # nor times out before the shutdown, however slow this machine is
            event = mention(f"<@{BOT_USER_ID}> where is my card?", channel=CHANNEL)
            body = event_body(event)
            async with http.post(a.events_url, data=body.encode(), headers=signed_headers(body)) as response:
                assert response.status == 200
            key = json.loads(body)["event_id"]
            await wait_for_state(database, key, "answering")
            a.app[SHUTDOWN_DEADLINE].append(asyncio.get_running_loop().time())  # SIGTERM, its grace spent
        assert (await database.get_claim(key)).lease_expires_at <= frozen_clock.utcnow()  # no clock advance
        [taken] = await b.sweep()
        assert taken.key == key
        [answer] = posts_in(fake, event["ts"])
        assert answer["text"].startswith("card news")


async def test_a_starting_replica_sweeps_before_it_serves(database_url, database, frozen_clock):
    await plant(database, "EvLeft", "1800000000.000600")
    frozen_clock.advance(LEASE_S + 1)
    async with (fake_slack() as fake, replica(database_url, fake, wait_swept=False) as b,
                aiohttp.ClientSession() as http):
        body = event_body(mention(f"<@{BOT_USER_ID}> a new question", channel=CHANNEL))
        async with http.post(b.events_url, data=body.encode(), headers=signed_headers(body)) as response:
            assert response.status == 200
            assert (await database.get_claim("EvLeft")).holder == b.book.holder  # taken before serving
        await fake.wait_for(lambda f: posts_in(f, "1800000000.000600"))
        await fake.wait_for(lambda f: len(f.posts()) == 2)
