"""Several `bankbot serve` replicas on one PostgreSQL: each replica is its own Database (engine) here.

Switches propagate through the settings table, benchmarks run one at a time through a lease, and a
replica keeps answering while the database is down (tests/tcp_proxy.py cuts it), logging requests later.
"""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from datetime import datetime
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy import func, select

from llm.banking77 import Example
from llm.benchmark import LEASE_NAME, BenchmarkRunner
from llm.config import LLMSettings
from llm.errors import BenchmarkBusyError
from llm.factory import ModelFactory
from llm.pipeline import BankingLLMPipeline, PipelineOptions, RequestContext
from storage.database import Database
from storage.models import Lease, RequestRecord
from tests.clock import FrozenClock
from tests.scripted import Scripted, ScriptedAdapter, builders
from tests.tcp_proxy import TcpProxy

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = [Example("Where is my card?", "card_arrival"), Example("Top up failed", "top_up_failed")]


@pytest.fixture
async def replicas(postgres_url):
    """Two Database objects on one migrated, emptied PostgreSQL database: replica A and replica B."""
    a, b = Database(postgres_url, flush_interval_s=0.01), Database(postgres_url, flush_interval_s=0.01)
    await a.upgrade()
    await a.truncate_all()
    try:
        yield a, b
    finally:
        await a.aclose()
        await b.aclose()


def pipeline_on(db: Database, *names: str, poll_s: float = 0.2) -> BankingLLMPipeline:
    adapters = [ScriptedAdapter(name, default=Scripted(f"answer from {name}")) for name in names]
    pipeline = BankingLLMPipeline(ModelFactory(LLMSettings(), builders(*adapters)), db,
                                  PipelineOptions(fallback_order=list(names)), default_model=names[0])
    pipeline.switcher.poll_s = poll_s
    return pipeline


async def eventually(condition, timeout_s: float = 30.0) -> bool:
    """Poll `condition` (a function, or a coroutine function) until it is truthy; False past a generous deadline."""
    deadline = time.monotonic() + timeout_s
    while not (await result if asyncio.iscoroutine(result := condition()) else result):
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.02)
    return True


async def stored_requests(db: Database) -> int:
    async with db.engine.connect() as conn:
        return (await conn.execute(select(func.count()).select_from(RequestRecord))).scalar_one()


async def test_a_switch_on_one_replica_is_followed_by_the_other(replicas):
    db_a, db_b = replicas
    a, b = pipeline_on(db_a, "custom", "gemini"), pipeline_on(db_b, "custom", "gemini")
    try:
        await a.start()
        await b.start()
        assert (a.active_model, b.active_model) == ("custom", "custom")
        assert (await a.switch_model("gemini", by="U_ADMIN")).ok
        assert await eventually(lambda: b.active_model == "gemini"), "replica B did not follow the switch"
        assert (await b.generate("Where is my card?")).model == "gemini"
    finally:
        await a.aclose()
        await b.aclose()


def runner_on(db: Database, tmp_path, gate: asyncio.Event, tag: str) -> BenchmarkRunner:
    model = ScriptedAdapter("bench", default=Scripted(intent="card_arrival", gate=gate))
    factory = ModelFactory(LLMSettings(), builders(model))
    return BenchmarkRunner(factory, lambda: EXAMPLES, db, tmp_path / f"bench-{tag}.jsonl", ["bench"])


@pytest.mark.parametrize("trigger", ["periodic", "manual"])
async def test_benchmarks_triggered_at_once_on_two_replicas_run_once(replicas, tmp_path, trigger):
    gate = asyncio.Event()
    runners = [runner_on(db, tmp_path, gate, tag) for db, tag in zip(replicas, "ab", strict=True)]
    tasks = [asyncio.create_task(runner.run(sample=2, trigger=trigger)) for runner in runners]
    done, pending = await asyncio.wait(tasks, timeout=10, return_when=asyncio.FIRST_COMPLETED)
    assert len(done) == 1 and len(pending) == 1  # the loser gives up at once; the winner waits on the gate
    [loser] = done
    if trigger == "periodic":
        assert loser.result() is None
    else:
        with pytest.raises(BenchmarkBusyError, match="already running"):
            loser.result()
    gate.set()
    [winner] = pending
    run = await winner
    assert run is not None and run.trigger == trigger
    stored = await replicas[0].latest_benchmark_runs(10)
    assert [r["id"] for r in stored] == [run.id]
    # The lease was released: the other replica can run the next one.
    loser_runner = runners[tasks.index(loser)]
    assert (await loser_runner.run(sample=2, trigger=trigger)) is not None
    assert len(await replicas[1].latest_benchmark_runs(10)) == 2


async def test_a_failed_benchmark_releases_its_lease(replicas, tmp_path):
    db_a, db_b = replicas

    def broken_examples():
        raise FileNotFoundError("test.csv is missing")

    factory = ModelFactory(LLMSettings(), builders(ScriptedAdapter("bench", default=Scripted())))
    failing = BenchmarkRunner(factory, broken_examples, db_a, tmp_path / "a.jsonl", ["bench"])
    with pytest.raises(FileNotFoundError):
        await failing.run(sample=2)
    assert await db_b.acquire_lease(LEASE_NAME, "replica-b", ttl_s=60)


async def test_answers_keep_coming_while_the_database_is_down_and_rows_land_after(postgres_url):
    counter = Database(postgres_url)
    await counter.upgrade()
    await counter.truncate_all()
    async with TcpProxy() as proxy:
        db = Database(proxy.rewrite(postgres_url), flush_interval_s=0.01)
        pipeline = pipeline_on(db, "custom", poll_s=0.05)
        try:
            await pipeline.start()  # its poller keeps reading the active model through the outage
            for i in range(5):
                await pipeline.generate(f"question {i}", RequestContext(source="api", user_id="U1"))
            assert await eventually(lambda: db.request_log.pending == 0)
            assert await stored_requests(counter) == 5

            await proxy.cut()
            answers = [await pipeline.generate(f"question during outage {i}") for i in range(20)]
            assert [a.text for a in answers] == ["answer from custom"] * 20
            assert await eventually(lambda: db.request_log.last_error)  # the writer tries, fails and backs off
            assert db.request_log.pending == 20
            assert await stored_requests(counter) == 5

            await proxy.restore()
            assert await eventually(lambda: db.request_log.pending == 0)
            assert await stored_requests(counter) == 25 == pipeline.request_count
            assert db.request_log.dropped == 0 and db.request_log.last_error is None
        finally:
            await pipeline.aclose()
            await db.aclose()
            await counter.aclose()


async def test_a_tiny_buffer_drops_exactly_the_overflow_while_the_database_is_down(postgres_url):
    counter = Database(postgres_url)
    await counter.upgrade()
    await counter.truncate_all()
    async with TcpProxy() as proxy:
        db = Database(proxy.rewrite(postgres_url), buffer_limit=4, flush_interval_s=0.01)
        pipeline = pipeline_on(db, "custom")
        try:
            await proxy.cut()
            answers = [await pipeline.generate(f"question {i}") for i in range(11)]
            await db.request_log.flush()  # fails: the rows stay buffered
            assert (db.request_log.pending, db.request_log.dropped) == (4, 7)
            await proxy.restore()
            assert await eventually(lambda: db.request_log.pending == 0)
            assert await stored_requests(counter) == 4
            async with counter.engine.connect() as conn:
                kept = (await conn.execute(select(RequestRecord.request_id))).scalars().all()
            assert sorted(kept) == sorted(a.request_id for a in answers[-4:])  # the 4 newest, written once
        finally:
            await pipeline.aclose()
            await db.aclose()
            await counter.aclose()


async def test_the_proxy_as_a_process_is_cut_and_restored_by_signals(postgres_url):
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.tcp_proxy", "--listen", "0", "--target", "127.0.0.1:5432",
        cwd=REPO, stdout=asyncio.subprocess.PIPE)
    try:
        banner = (await asyncio.wait_for(process.stdout.readline(), 10)).decode()
        port = int(banner.split()[1].rpartition(":")[2])
        dsn = TcpProxy(listen_port=port).rewrite(postgres_url).replace("postgresql+asyncpg://", "postgresql://")

        async def select_one():
            conn = await asyncpg.connect(dsn, timeout=5)
            try:
                return await conn.fetchval("SELECT 1")
            finally:
                await conn.close()

        async def refused() -> bool:
            try:
                await select_one()
            except OSError:
                return True
            return False

        async def answers() -> bool:
            return not await refused()

        assert await select_one() == 1
        process.send_signal(signal.SIGUSR1)
        assert await eventually(refused), "the proxy kept relaying after SIGUSR1"
        process.send_signal(signal.SIGUSR2)
        assert await eventually(answers), "the proxy did not relay again after SIGUSR2"
        assert await select_one() == 1
    finally:
        process.terminate()
        assert await asyncio.wait_for(process.wait(), 10) is not None


async def lease_expiry(db: Database) -> datetime | None:
    async with db.engine.connect() as conn:
        return (await conn.execute(select(Lease.expires_at).where(Lease.name == LEASE_NAME))).scalar_one_or_none()


async def _renewed(db: Database, until: datetime) -> bool:
    return await lease_expiry(db) == until


async def test_a_long_benchmark_renews_its_lease_past_the_ttl(replicas, tmp_path, frozen_clock: FrozenClock):
    db_a, db_b = replicas
    gate = asyncio.Event()
    runner = runner_on(db_a, tmp_path, gate, "a")
    runner.lease_ttl_s, runner.lease_renew_s = 60, 0.01  # renewals come often; the database's clock is moved
    task = asyncio.create_task(runner.run(sample=2, trigger="manual"))
    for _ in range(3):  # 3 x 40 s: twice the TTL, so without renewal the lease would have expired
        assert await eventually(lambda: _renewed(db_b, frozen_clock.later(60))), "the lease was not renewed"
        frozen_clock.advance(40)
    assert not task.done()
    assert not await db_b.acquire_lease(LEASE_NAME, "replica-b", ttl_s=60)
    gate.set()
    await task
    assert await db_b.acquire_lease(LEASE_NAME, "replica-b", ttl_s=60)
