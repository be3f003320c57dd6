"""SIGTERM during traffic: a real server process (bot.server.serve on scripted models taking 1.5 s) stops
accepting connections, finishes the API requests and the Slack answers that run after their ack, writes every
request row, and exits 0. The request log is flushed before the models are closed, within its own budget."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest
from sqlalchemy import func, select

from bot.runtime import Runtime
from bot.settings import Settings
from llm.pipeline import RequestContext
from storage.database import Database
from storage.models import RequestRecord
from tests.fake_slack import BOT_USER_ID, FakeSlack
from tests.scripted import Scripted, ScriptedAdapter, builders
from tests.serve_helpers import start_server
from tests.slack_helpers import event_body, mention, signed_headers
from tests.storage_helpers import migrated_database
from tests.tcp_proxy import TcpProxy

SECRET = "shutdown-signing-secret"
SLACK_EVENTS, API_REQUESTS = 12, 8


@pytest.fixture
async def empty_postgres(postgres_url):
    async with migrated_database(postgres_url) as db:
        yield db


async def rows_by_source(db: Database) -> dict[str, int]:
    query = select(RequestRecord.source, func.count()).group_by(RequestRecord.source)
    async with db.engine.connect() as conn:
        return dict((await conn.execute(query)).all())


async def refused(url: str) -> bool:
    """True when a new connection to `url` is refused (the listening socket is closed)."""
    try:
        async with aiohttp.ClientSession() as fresh, fresh.get(url + "/health") as response:
            await response.read()
            return False
    except aiohttp.ClientConnectorError:
        return True


async def test_sigterm_finishes_requests_and_slack_answers_in_flight_then_exits_0(tmp_path, postgres_url,
                                                                                  empty_postgres):
    fake = await FakeSlack().start()
    server = await start_server(tmp_path, "server", env={
        "DATABASE_URL": postgres_url, "SLACK_BOT_TOKEN": "xoxb-test", "SLACK_SIGNING_SECRET": SECRET,
        "SLACK_API_URL": fake.api_url, "SCRIPTED_DELAY_S": "1.5", "RATE_LIMIT_USER_PER_MIN": "0",
        "RATE_LIMIT_API_PER_MIN": "0", "LOG_LEVEL": "INFO"})
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
            await server.wait_healthy(http)
            events = [mention(f"<@{BOT_USER_ID}> where is my card {i}?", channel="C0SHUT") for i in range(SLACK_EVENTS)]

            async def deliver(event: dict) -> int:
                body = event_body(event)
                async with http.post(server.url + "/slack/events", data=body.encode(),
                                     headers=signed_headers(body, secret=SECRET)) as response:
                    return response.status

            async def ask(i: int) -> tuple[int, dict]:
                async with http.post(server.url + "/api/v1/chat", json={"message": f"card {i} declined"}) as r:
                    return r.status, json.loads(await r.text())

            api = [asyncio.create_task(ask(i)) for i in range(API_REQUESTS)]
            acks = await asyncio.gather(*(deliver(e) for e in events))
            assert acks == [200] * SLACK_EVENTS
            # Every answer has begun (its progress reaction is up) and none has been posted: all are in flight.
            await fake.wait_for(lambda f: len(f.calls_to("reactions.add")) >= SLACK_EVENTS)
            assert not fake.posts() and not any(task.done() for task in api)

            server.process.terminate()
            for _ in range(250):  # the listening socket closes at once; the answers take 1.5 s more
                if await refused(server.url):
                    break
                await asyncio.sleep(0.02)
            assert server.process.returncode is None, "exited before new connections were seen refused"
            assert await refused(server.url)

            responses = await asyncio.gather(*api)
            code = await server.stop(within_s=10)  # bounds the wait; it is not a speed assertion
    finally:
        await fake.stop()
    log = server.log()
    assert code == 0, log[-3000:]
    assert [status for status, _ in responses] == [200] * API_REQUESTS
    assert all(body["text"].startswith("custom answers: card") for _, body in responses)
    threads = {event["ts"] for event in events}
    assert sorted(post["thread_ts"] for post in fake.posts()) == sorted(threads)  # one answer per event
    assert all(post["text"].startswith("custom answers: where is my card") for post in fake.posts())
    assert await rows_by_source(empty_postgres) == {"slack": SLACK_EVENTS, "api": API_REQUESTS}
    assert "cancelled" not in log and "Traceback" not in log, log[-3000:]


class RecordsAtClose(ScriptedAdapter):
    """A model that notes, when it is closed, how many request rows were still unwritten and how many stored."""

    def __init__(self, name: str):
        super().__init__(name, default=Scripted(f"{name} answers"))
        self.runtime: Runtime | None = None
        self.seen_at_close: tuple[int, int] | None = None  # (rows pending, rows in the database)

    async def aclose(self) -> None:
        assert self.runtime is not None
        stored = sum((await rows_by_source(self.runtime.db)).values())
        self.seen_at_close = (self.runtime.db.request_log.pending, stored)


async def test_shutdown_flushes_the_request_log_before_it_closes_the_models(tmp_path):
    custom = RecordsAtClose("custom")
    settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'order.db'}", llm_model_version="custom",
                        fallback_order="custom", benchmark_every_n=0)
    runtime = await Runtime.create(settings, builders=builders(custom), serving=False)
    custom.runtime = runtime
    runtime.db.request_log.flush_interval_s = 3600  # rows wait in the buffer until the shutdown writes them
    for i in range(5):
        await runtime.pipeline.generate(f"card {i}", RequestContext(source="api"))
    assert runtime.db.request_log.pending == 5
    await runtime.aclose(flush_budget_s=30)
    assert custom.seen_at_close == (0, 5)


async def test_a_database_that_never_answers_costs_the_flush_its_budget_and_the_models_still_close(postgres_url):
    custom = ScriptedAdapter("custom", default=Scripted("custom answers"))
    closed = asyncio.Event()

    async def close() -> None:
        closed.set()

    custom.aclose = close  # type: ignore[method-assign]
    async with TcpProxy() as proxy:
        settings = Settings(database_url=proxy.rewrite(postgres_url), llm_model_version="custom",
                            fallback_order="custom", benchmark_every_n=0)
        runtime = await Runtime.create(settings, builders=builders(custom), serving=False)
        runtime.db.request_log.flush_interval_s = 3600
        await runtime.pipeline.generate("card", RequestContext(source="api"))
        proxy.black_hole()
        async with asyncio.timeout(20):  # only stops a hung test: the flush's budget is 0.3 s
            await runtime.aclose(flush_budget_s=0.3)
        assert closed.is_set() and runtime.db.request_log.pending == 1  # counted as lost in the log
