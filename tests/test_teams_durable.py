"""Durable claims in Teams: a message's claim (the question, redacted, and the conversation reference) is written
before the 202, since Teams does not re-deliver an accepted activity; a question whose replica stopped answering
is taken over by another replica's sweeper (here its start-up sweep) and answered there, once, as a proactive
message in its conversation. Real web apps, the Agents SDK and the fake Bot Connector; the storage clock is
frozen."""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager

from aiohttp.test_utils import TestServer

from bot.conversation.durable import claims_of
from bot.conversation.sweeper import Sweeper
from bot.runtime import Runtime
from bot.server import SWEPT, build_web_app, resumers
from bot.settings import Settings
from tests.scripted import Scripted, ScriptedAdapter, builders
from tests.storage_helpers import wait_for_state
from tests.teams_helpers import activity, teams_harness

LEASE_S = 20.0


def key_of(body: dict) -> str:
    return f"teams:{body['conversation']['id']}:{body['id']}"


@asynccontextmanager
async def second_replica(database: str, model: ScriptedAdapter):
    """Another replica on the same database: its own runtime and web app (it sweeps only when told, and once at
    start-up)."""
    runtime = await Runtime.create(Settings(teams_service_url_hosts="127.0.0.1", llm_model_version="custom",
                                            fallback_order="custom", benchmark_every_n=0, database_url=database,
                                            claim_lease_s=LEASE_S, sweep_interval_s=3600),
                                   builders=builders(model))
    app = build_web_app(runtime)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    await app[SWEPT].wait()
    try:
        yield runtime, app
    finally:
        await server.close()
        await runtime.aclose()


async def test_a_teams_question_is_claimed_before_its_202(monkeypatch):
    gate = asyncio.Event()  # the model answers only once the test has looked
    custom = ScriptedAdapter("custom", default=Scripted("Your card is on its way.", "card_arrival", 0.93, gate=gate))
    async with teams_harness(monkeypatch, custom=custom) as h:
        body = activity("My card 4111 1111 1111 1111 never arrived", h.connector.url, kind="personal")
        assert (await h.send(body)).status == 202
        claim = await h.runtime.db.get_claim(key_of(body))
        assert claim is not None and claim.source == "teams" and claim.holder == claims_of(h.runtime).holder
        assert "4111" not in claim.question and claim.question.startswith("My card")
        gate.set()
        await h.connector.wait_for(lambda c: c.messages())
        await h.settled()
        assert (await h.runtime.db.get_claim(key_of(body))).state == "answered"


async def test_a_teams_question_whose_replica_stopped_is_answered_by_another_once(monkeypatch, tmp_path,
                                                                                  frozen_clock):
    database = f"sqlite+aiosqlite:///{tmp_path}/shared.db"
    stuck = asyncio.Event()  # replica A's model hangs until the end
    custom = ScriptedAdapter("custom", default=Scripted("Replica A answers.", "card_arrival", 0.9, gate=stuck))
    custom.default_timeout_s = 300
    async with teams_harness(monkeypatch, custom=custom, database_url=database, claim_lease_s=LEASE_S,
                             sweep_interval_s=3600) as h:
        body = activity("Where is my card?", h.connector.url, kind="personal")
        assert (await h.send(body)).status == 202
        await wait_for_state(h.runtime.db, key_of(body), "answering")  # A works on it, and then stops answering
        frozen_clock.advance(LEASE_S + 1)
        other = ScriptedAdapter("custom", default=Scripted("Replica B answers.", "card_arrival", 0.9))
        async with second_replica(database, other) as (runtime_b, app_b):
            await h.connector.wait_for(lambda c: c.messages())  # B's start-up sweep took it over
            assert claims_of(runtime_b).taken_over == 1
            assert await Sweeper(runtime_b, resumers(app_b)).sweep() == []  # and nothing is left to take
            await wait_for_state(runtime_b.db, key_of(body), "answered")
            stuck.set()  # A's model answers at last: A finds the question is no longer its own and stays quiet
            await h.settled()
        [answer] = h.connector.messages()
        assert "Replica B answers." in answer.activity["text"] and answer.conversation == body["conversation"]["id"]
        assert other.prompts == ["Where is my card?"]


async def test_a_question_whose_answer_cannot_start_is_released_for_a_sweeper(monkeypatch, frozen_clock):
    """The claim is written before the 202, but the proactive turn cannot start (no outbound token): the claim is
    released at once instead of being held, and renewed, by a replica that will never answer it."""
    from microsoft_agents.authentication.msal import MsalAuth

    async with teams_harness(monkeypatch, claim_lease_s=LEASE_S, sweep_interval_s=3600) as h:
        token = MsalAuth.get_access_token

        async def unreachable(*args, **kwargs):
            raise ConnectionError("login.microsoftonline.com is unreachable")

        monkeypatch.setattr(MsalAuth, "get_access_token", unreachable)
        body = activity("Where is my card?", h.connector.url, kind="personal")
        assert (await h.send(body)).status == 202
        await h.settled()
        book = claims_of(h.runtime)
        claim = await h.runtime.db.get_claim(key_of(body))
        assert claim.state == "claimed" and claim.lease_expires_at <= frozen_clock.utcnow()  # released, not held
        assert key_of(body) not in book.held and h.connector.messages() == []
        monkeypatch.setattr(MsalAuth, "get_access_token", token)  # the sign-in works again
        [taken] = await Sweeper(h.runtime, resumers(h.app)).sweep()
        assert taken.key == key_of(body)
        await h.connector.wait_for(lambda c: c.messages())
        await h.settled()
        assert len(h.connector.messages()) == 1
