"""Teams re-sends an activity (same id) when the bot is slow: one answer per activity, across replicas."""

from __future__ import annotations

import asyncio

from bot.runtime import Runtime
from bot.settings import Settings
from tests.scripted import Scripted, ScriptedAdapter, builders
from tests.teams_helpers import activity, teams_app, teams_harness


async def test_the_same_activity_delivered_twice_gets_one_reply(monkeypatch):
    async with teams_harness(monkeypatch) as h:
        body = activity("Where is my card?", h.connector.url, kind="channel", mention=True)
        statuses = [(await h.send(body)).status for _ in range(2)]
        statuses += [r.status for r in await asyncio.gather(h.send(body), h.send(body))]
        assert statuses == [202] * 4
        await h.connector.wait_for(lambda c: c.messages())
        await h.settled()
        assert len(h.connector.messages()) == 1 and h.custom.prompts == ["Where is my card?"]


async def test_two_replicas_answer_a_redelivered_activity_once(monkeypatch, tmp_path):
    database = f"sqlite+aiosqlite:///{tmp_path}/shared.db"
    async with teams_harness(monkeypatch, database_url=database) as h:
        other_custom = ScriptedAdapter("custom", default=Scripted("Replica two answers.", "card_arrival", 0.9))
        other = await Runtime.create(Settings(teams_service_url_hosts="127.0.0.1", llm_model_version="custom",
                                              fallback_order="custom", benchmark_every_n=0, database_url=database),
                                     builders=builders(other_custom))
        try:
            async with teams_app(other) as (other_url, other_work, _):
                bodies = [activity(f"question {i}", h.connector.url, kind="personal", conversation="a:1same")
                          for i in range(5)]
                for body in bodies:  # each one to both replicas, as a re-delivery through a load balancer would
                    await asyncio.gather(h.send(body), h.send(body, url=other_url))
                await h.connector.wait_for(lambda c: len(c.messages()) >= len(bodies))
                await h.settled()
                while other_work.in_flight:
                    await asyncio.wait(set(other_work.tasks), timeout=30)
                answered = sorted(h.custom.prompts + other_custom.prompts)
                assert answered == sorted(b["text"] for b in bodies)  # each once, by one replica or the other
                assert len(h.connector.messages()) == len(bodies)
        finally:
            await other.aclose()
