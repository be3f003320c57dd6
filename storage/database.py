"""The one entry point to persistence: an async engine on SQLite or PostgreSQL, and the queries bankbot needs.

Calls on a user's request path (the Slack de-duplication claim, rate-limit hits) are bounded by
``request_timeout_s`` (1 s): past it the caller gets a TimeoutError at once and fails open, while the abandoned
call finishes or is cleaned up in the background (an invalidated asyncpg connection takes up to 2 s more to
close, which the caller must not wait for). On PostgreSQL every statement also has asyncpg's
``command_timeout``, so nothing waits forever on a server that accepted a connection and went silent.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import delete, event, func, insert, or_, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.orm import selectinload
from sqlalchemy.pool import StaticPool

import storage.context_turns  # noqa: F401 - conversation context turns, on Base.metadata (migration 0009)
import storage.slack_installations  # noqa: F401 - slack-sdk's OAuth tables, on Base.metadata (migration 0008)
from storage import claims, leases, model_spend, rate_limits
from storage.claim_batch import ClaimBatch
from storage.claim_queries import ClaimQueries
from storage.dialects import dialect_insert
from storage.migrate import upgrade_on
from storage.models import Base, BenchmarkResult, BenchmarkRun, ModelSwitch, ProcessedEvent, Setting, utcnow
from storage.rate_limits import RateDecision
from storage.request_log import RequestLog
from storage.request_metrics import request_metrics
from storage.routing_metrics import routing_metrics

log = logging.getLogger(__name__)
T = TypeVar("T")

PING_TIMEOUT_S = 5.0
REQUEST_PATH_TIMEOUT_S = 1.0  # a call a user waits on: past this the caller fails open
SQLITE_BUSY_TIMEOUT_S = 30.0  # how long a writer waits for another connection's lock
PG_CONNECT_TIMEOUT_S = 10.0
# An answer takes several short writes (claim and its states, dialogue and context turns, request rows): under a
# burst, a claim that waits for a free connection past its 1 s bound is answered unclaimed, and may be answered
# twice. 10 + 20 per replica keeps that wait short and stays well within PostgreSQL's default 100 connections
# for a few replicas.
PG_POOL_SIZE = 10
PG_MAX_OVERFLOW = 20
PG_CLAIMS_POOL_SIZE = 5  # + as many overflow: the claims' and rate limits' own connections
PG_COMMAND_TIMEOUT_S = 30.0  # any one statement (migrations run on an engine of their own, without it)
PRUNE_EVERY_S = 60.0  # how often one process deletes finished rate-limit windows and old event ids
EVENT_RETENTION = timedelta(hours=1)  # processed Slack event ids kept this long (Slack retries for minutes)
OPEN_CLAIM_RETENTION = timedelta(days=7)  # and claims never finished (no replica ran to give up on them) longer


READ_ONLY = "bankbot_read_only"  # execution option of Database.reads: SQLite begins those deferred


def make_engine(url: str, *, command_timeout_s: float | None = PG_COMMAND_TIMEOUT_S,
                pool_size: int = PG_POOL_SIZE, max_overflow: int = PG_MAX_OVERFLOW) -> AsyncEngine:
    """An async engine tuned per backend: SQLite gets WAL, foreign keys and a busy timeout; PostgreSQL gets
    connect and statement timeouts."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_async_engine(url, pool_pre_ping=True, pool_size=pool_size, max_overflow=max_overflow,
                                   connect_args={"timeout": PG_CONNECT_TIMEOUT_S,
                                                 "command_timeout": command_timeout_s})
    in_memory = parsed.database in (None, "", ":memory:")
    engine = create_async_engine(
        url,
        connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S} | ({"check_same_thread": False} if in_memory else {}),
        **({"poolclass": StaticPool} if in_memory else {}),  # one shared connection, or each sees its own DB
    )

    @event.listens_for(engine.sync_engine, "connect")
    def _sqlite_pragmas(dbapi_connection, _record):
        dbapi_connection.isolation_level = None  # the driver emits no BEGIN of its own; see _begin_immediate
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        if not in_memory:
            cursor.execute("PRAGMA journal_mode=WAL")  # readers do not block the writer
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _begin_immediate(conn):
        # A writer takes the write lock when its transaction starts, waiting up to the busy timeout. A deferred
        # BEGIN that reads first and writes later fails at once with "database is locked" when another connection
        # wrote in between (WAL snapshots cannot be upgraded), which bursts of concurrent requests make likely.
        # Reads (Database.reads) never write: a deferred BEGIN reads a WAL snapshot and waits for no writer.
        conn.exec_driver_sql("BEGIN" if conn.get_execution_options().get(READ_ONLY) else "BEGIN IMMEDIATE")

    return engine


class DatabaseHungError(TimeoutError):
    """A bounded call refused at once: the database left an earlier one unanswered, and another call is
    checking whether it is back."""


class Database(ClaimQueries):
    def __init__(self, url: str, *, buffer_limit: int = 10_000, flush_interval_s: float = 0.5,
                 batch_size: int = 500, request_timeout_s: float = REQUEST_PATH_TIMEOUT_S):
        self.url = url
        self.request_timeout_s = request_timeout_s
        self.engine = make_engine(url)
        # Claims and rate-limit hits open every answer and have a 1 s bound: on PostgreSQL they get connections of
        # their own, so a burst's bookkeeping (dialogue, context, claim states) never makes them queue for one
        # (an unclaimed answer may be given twice). SQLite serialises writes anyway: one engine.
        self.claims_engine = (make_engine(url, pool_size=PG_CLAIMS_POOL_SIZE, max_overflow=PG_CLAIMS_POOL_SIZE)
                              if self.engine.dialect.name == "postgresql" else self.engine)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self.reads = self.engine.execution_options(**{READ_ONLY: True})  # same pool; never takes the write lock
        self.read_sessions = async_sessionmaker(self.reads, expire_on_commit=False)
        self.request_log = RequestLog(self.engine, buffer_limit=buffer_limit,
                                      flush_interval_s=flush_interval_s, batch_size=batch_size)
        self.claim_batch = ClaimBatch(self.claims_engine, self._insert_claims)  # group commit of claims
        self._pruned_at = time.monotonic()
        self._housekeeping: asyncio.Task | None = None
        self._abandoned: set[asyncio.Task] = set()  # bounded calls given up on, still cleaning up
        self._hung = False  # a bounded call timed out and none has been answered since (see _bounded)
        self._probing = False  # one call is checking whether the database is back

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    # -- lifecycle ------------------------------------------------------------------------------------

    async def upgrade(self) -> None:
        """``alembic upgrade head`` on this database; creates a SQLite file's parent directory."""
        parsed = make_url(self.url)
        if parsed.get_backend_name() == "sqlite":
            if parsed.database not in (None, "", ":memory:"):
                Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
            async with self.engine.begin() as conn:  # in memory, only this engine sees the database
                await conn.run_sync(upgrade_on)
            return
        engine = make_engine(self.url, command_timeout_s=None)  # a migration may rewrite a big table
        try:
            async with engine.begin() as conn:
                await conn.run_sync(upgrade_on)
        finally:
            await engine.dispose()

    async def truncate_all(self) -> None:
        """Delete every row of every table (alembic_version excepted)."""
        tables = list(reversed(Base.metadata.sorted_tables))
        async with self.engine.begin() as conn:
            if self.dialect == "postgresql":
                names = ", ".join(f'"{table.name}"' for table in tables)
                await conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
            else:
                for table in tables:
                    await conn.execute(delete(table))

    async def ping(self) -> bool:
        """True when the database answers ``SELECT 1`` within PING_TIMEOUT_S. Never raises."""
        async def probe() -> None:
            async with self.reads.connect() as conn:
                await conn.execute(text("SELECT 1"))

        try:
            await self._bounded(probe(), PING_TIMEOUT_S, fail_fast=False)  # readiness always asks
        except Exception:  # noqa: BLE001
            return False
        return True

    @property
    def hanging(self) -> bool:
        """A bounded call timed out and none has been answered since: the database is taken to hang."""
        return self._hung

    async def bounded(self, call: Coroutine[Any, Any, T], timeout_s: float | None = None) -> T:
        """``call`` bounded as the request path's database calls are, for bookkeeping in bot/ that an answer can
        go without (dialogue, context): it fails at once while the database is known to hang (see ``_bounded``)."""
        return await self._bounded(call, timeout_s, fail_fast=True)

    async def _bounded(self, call: Coroutine[Any, Any, T], timeout_s: float | None = None, *,
                       fail_fast: bool = False) -> T:
        """``call``'s result, or TimeoutError after ``timeout_s`` (default ``request_timeout_s``) without
        waiting for the abandoned call to clean up: it is cancelled and finishes in the background.

        A database that hangs would cost every request one timeout per step (dialogue, context...): once a call
        has timed out, one ``fail_fast`` call at a time tries the database again and the others fail at once,
        until one gets an answer. Claims and rate limits always ask (a busy database is not a hung one, and an
        unclaimed answer risks a duplicate)."""
        if fail_fast and self._hung and self._probing:
            call.close()
            raise DatabaseHungError("the database is not answering; another call is checking whether it is back")
        probe = self._hung
        self._probing = self._probing or probe
        task = asyncio.ensure_future(call)
        try:
            result = await asyncio.wait_for(asyncio.shield(task), timeout_s or self.request_timeout_s)
        except BaseException as exc:
            if not task.done():
                task.cancel()
                self._abandoned.add(task)
                task.add_done_callback(_forget(self._abandoned))
            self._hung = self._hung or isinstance(exc, TimeoutError)
            raise
        else:
            self._hung = False
            return result
        finally:
            if probe:
                self._probing = False

    async def aclose(self, *, flush: bool = True) -> None:
        """Flush the request log (best effort; `flush=False`: the caller has closed it already) and release
        every connection."""
        if self._housekeeping and not self._housekeeping.done():
            self._housekeeping.cancel()
        if self._abandoned:  # cancelled already; their connections' clean-up is bounded (2 s on asyncpg)
            await asyncio.gather(*self._abandoned, return_exceptions=True)
        try:
            await self.claim_batch.aclose()
            if flush:
                await self.request_log.aclose()
        finally:
            await self.engine.dispose()
            if self.claims_engine is not self.engine:
                await self.claims_engine.dispose()

    # -- settings -------------------------------------------------------------------------------------

    async def get_setting(self, key: str) -> str | None:
        async with self.reads.connect() as conn:
            return (await conn.execute(select(Setting.value).where(Setting.key == key))).scalar_one_or_none()

    async def setting_once(self, key: str, value: str) -> str:
        """The value of ``key``, set to ``value`` first if absent: concurrent callers (several replicas) all get
        the value of the one insert that won."""
        statement = (self._insert(Setting).values(key=key, value=value, updated_at=utcnow())
                     .on_conflict_do_nothing(index_elements=[Setting.key]))
        async with self.engine.begin() as conn:
            await conn.execute(statement)
            return (await conn.execute(select(Setting.value).where(Setting.key == key))).scalar_one()

    async def put_setting(self, key: str, value: str) -> None:
        values = {"key": key, "value": value, "updated_at": utcnow()}
        statement = self._insert(Setting).values(values)
        statement = statement.on_conflict_do_update(
            index_elements=[Setting.key], set_={"value": value, "updated_at": values["updated_at"]}
        )
        async with self.engine.begin() as conn:
            await conn.execute(statement)

    # -- model switch audit trail ---------------------------------------------------------------------

    async def record_switch(self, *, from_model: str | None, to_model: str, by: str, ok: bool,
                            reason: str = "") -> None:
        async with self.engine.begin() as conn:
            await conn.execute(insert(ModelSwitch).values(
                at=utcnow(), from_model=from_model, to_model=to_model, by=by, ok=ok, reason=reason))

    async def list_switches(self, limit: int = 20) -> list[dict]:
        """The latest ``limit`` switches, newest first."""
        query = select(ModelSwitch).order_by(ModelSwitch.at.desc(), ModelSwitch.id.desc()).limit(limit)
        async with self.read_sessions() as session:
            return [switch.as_dict() for switch in (await session.scalars(query))]

    # -- request log ----------------------------------------------------------------------------------

    async def request_metrics(self, since: datetime | None = None) -> list[dict]:
        """Per-model count, latency (avg, p50, p99 over successes), error rate and tokens since ``since``."""
        async with self.reads.connect() as conn:
            return await request_metrics(conn, since)

    async def routing_metrics(self, since: datetime | None = None) -> list[dict]:
        """Per routing arm (a call's role) and model: calls, failures, latencies, cost, escalations, shadow
        agreement and feedback since ``since`` (storage/routing_metrics.py)."""
        async with self.reads.connect() as conn:
            return await routing_metrics(conn, since)

    # -- daily spend per paid model (storage/model_spend.py) ------------------------------------------

    async def reserve_spend(self, model: str, day: str, amount_usd: float, limit_usd: float) -> float | None:
        """Reserve ``amount_usd`` of ``model``'s budget for ``day`` (every replica's): the new total, or None
        when it would pass ``limit_usd``."""
        async with self.engine.begin() as conn:
            return await model_spend.reserve(conn, self._insert, model, day, amount_usd, limit_usd)

    async def adjust_spend(self, model: str, day: str, delta_usd: float) -> None:
        async with self.engine.begin() as conn:
            await model_spend.adjust(conn, model, day, delta_usd)

    async def spend_on(self, day: str) -> dict[str, float]:
        """USD spent per paid model on ``day`` (YYYY-MM-DD, UTC), across replicas."""
        async with self.reads.connect() as conn:
            return await model_spend.on_day(conn, day)

    # -- benchmarks -----------------------------------------------------------------------------------

    async def save_benchmark_run(self, run: dict) -> int:
        """Store a run and its per-model results in one transaction; returns the run id."""
        fields = dict(run)
        results = [BenchmarkResult(**result) for result in fields.pop("results", [])]
        record = BenchmarkRun(**fields, results=results)
        async with self.sessions.begin() as session:
            session.add(record)
        return record.id

    async def benchmark_spend(self, since: datetime, trigger: str) -> float:
        """USD spent by the benchmark runs of ``trigger`` started since ``since`` (every replica's)."""
        query = (select(func.coalesce(func.sum(BenchmarkResult.cost_usd), 0.0))
                 .join(BenchmarkRun, BenchmarkResult.run_id == BenchmarkRun.id)
                 .where(BenchmarkRun.trigger == trigger, BenchmarkRun.started_at >= since))
        async with self.reads.connect() as conn:
            return float((await conn.execute(query)).scalar_one())

    async def latest_benchmark_runs(self, limit: int = 1) -> list[dict]:
        """The latest ``limit`` runs, newest first, each with its ``results`` in insertion order."""
        query = (select(BenchmarkRun).options(selectinload(BenchmarkRun.results))
                 .order_by(BenchmarkRun.started_at.desc(), BenchmarkRun.id.desc()).limit(limit))
        async with self.read_sessions() as session:
            runs = (await session.scalars(query)).all()
        return [run.as_dict() | {"results": [result.as_dict() for result in run.results]} for run in runs]

    # -- leases (locks shared by every replica) -------------------------------------------------------

    async def acquire_lease(self, name: str, holder: str, ttl_s: float) -> bool:
        """Take (or renew) lease ``name`` for ``ttl_s`` seconds; False while another holder has it."""
        async with self.engine.begin() as conn:
            return await leases.acquire(conn, self._insert, name, holder, ttl_s, utcnow())

    async def release_lease(self, name: str, holder: str) -> None:
        """Free lease ``name`` if ``holder`` still holds it."""
        async with self.engine.begin() as conn:
            await leases.release(conn, name, holder)

    # -- rate limits (fixed windows shared by every replica) ------------------------------------------

    async def hit_rate_limit(self, key: str, window_s: int, limit: int) -> RateDecision:
        """Count one hit of ``key`` in the current ``window_s`` window; refused past ``limit`` hits.
        TimeoutError after ``request_timeout_s`` (a user waits on it)."""
        async def hit() -> RateDecision:
            async with self.claims_engine.begin() as conn:
                return await rate_limits.hit(conn, self._insert, key, window_s, limit, time.time())

        decision = await self._bounded(hit())
        self._schedule_housekeeping()
        return decision

    def _schedule_housekeeping(self) -> None:
        """Now and then, in the background (never inside a caller's timeout): drop finished rate-limit windows
        and event ids older than EVENT_RETENTION (Slack stops retrying an event within minutes)."""
        if time.monotonic() - self._pruned_at < PRUNE_EVERY_S or (self._housekeeping and not self._housekeeping.done()):
            return
        self._pruned_at = time.monotonic()
        self._housekeeping = asyncio.get_running_loop().create_task(self._prune(), name="storage-housekeeping")

    async def _prune(self) -> None:
        try:
            await self.prune_rate_limits()
            await self.prune_events(utcnow() - EVENT_RETENTION)
        except Exception as exc:  # noqa: BLE001 - housekeeping; the next round catches up
            log.debug("housekeeping failed: %s", exc)

    async def prune_events(self, older_than: datetime) -> int:
        """Forget delivery claims received before ``older_than``; returns how many. Open claims (not answered yet)
        are kept for OPEN_CLAIM_RETENTION: a replica's sweeper answers them or gives up on them first."""
        async with self.engine.begin() as conn:
            result = await conn.execute(delete(ProcessedEvent).where(
                ProcessedEvent.created_at < older_than,
                or_(ProcessedEvent.state.is_(None), ProcessedEvent.state.not_in(claims.OPEN),
                    ProcessedEvent.created_at < older_than - OPEN_CLAIM_RETENTION)))
        return result.rowcount

    async def prune_rate_limits(self) -> int:
        """Delete the counters of finished windows; returns how many."""
        async with self.engine.begin() as conn:
            return await rate_limits.prune(conn, time.time())

    def _insert(self, model: type[Base]):
        """The dialect's INSERT, which has ``on_conflict_do_*`` on both PostgreSQL and SQLite."""
        return dialect_insert(self.dialect, model)


def _forget(tasks: set[asyncio.Task]) -> Callable[[asyncio.Task], None]:
    """A done-callback that drops a finished task from ``tasks`` and retrieves its outcome (no warning)."""
    def done(task: asyncio.Task) -> None:
        tasks.discard(task)
        if not task.cancelled():
            task.exception()

    return done
