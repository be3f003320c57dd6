"""Wires settings, storage and the llm package into one running system."""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING

from bot.rate_limit import RateLimiter
from bot.settings import Settings
from llm import banking77
from llm.benchmark import BenchmarkRunner
from llm.factory import AdapterBuilder, ModelFactory
from llm.pipeline import BankingLLMPipeline, PipelineOptions
from storage.database import Database

if TYPE_CHECKING:
    from bot.warmup import Warmup

log = logging.getLogger(__name__)
SHADOW_DRAIN_S = 0.5  # at shutdown, shadow calls in flight get this long to finish and record their rows
USER_HASH_SALT_KEY = "user_hash_salt"  # settings row holding the generated salt when USER_HASH_SALT is unset


@cache
def _test_split() -> tuple[banking77.Example, ...]:
    """Banking77's test split, read once per process for every benchmark run."""
    return tuple(banking77.load_split("test"))


@dataclass
class Runtime:
    settings: Settings
    db: Database
    factory: ModelFactory
    pipeline: BankingLLMPipeline
    benchmark: BenchmarkRunner
    rate_limiter: RateLimiter
    pinned: bool = False  # the active model is fixed for this process (`bankbot ask --model`)
    warmup: Warmup | None = None  # `bankbot serve`: models loading (or the custom one training) in the background
    started: asyncio.Event = field(default_factory=asyncio.Event)  # set once start() has finished

    @classmethod
    async def create(cls, settings: Settings, *, builders: dict[str, AdapterBuilder | str] | None = None,
                     active_model: str | None = None, serving: bool = True) -> Runtime:
        """Build and start: migrate the database, resolve the user-hash salt, read the active model.

        `serving`: a server applies a changed LLM_MODEL_VERSION and follows switches made by other replicas;
        one-off commands only read the active model. `active_model` pins the model for this process
        (as `bankbot ask --model`), ignoring the database.
        """
        runtime = cls.build(settings, builders=builders, active_model=active_model)
        await runtime.start(serving=serving)
        return runtime

    @classmethod
    def build(cls, settings: Settings, *, builders: dict[str, AdapterBuilder | str] | None = None,
              active_model: str | None = None) -> Runtime:
        """Every part, wired, with no I/O yet (a server binds its port in between); then `start()`."""
        if settings.banking77_dir:  # also when it is set only in .env: llm.banking77 reads the environment
            os.environ.setdefault("BANKING77_DIR", str(settings.banking77_dir))
        db = Database(settings.database_url)
        factory = ModelFactory(settings, builders)
        models = list(dict.fromkeys([factory.resolve(settings.llm_model_version), *settings.fallback_names]))
        benchmark = BenchmarkRunner(factory, _test_split, db, settings.benchmark_log, models)
        options = PipelineOptions.from_settings(settings, store_messages=settings.store_messages)
        pipeline = BankingLLMPipeline(factory, db, options, default_model=active_model or settings.llm_model_version,
                                      benchmark=benchmark)
        limiter = RateLimiter(db, settings.rate_limit_user_per_min, settings.rate_limit_api_per_min)
        return cls(settings, db, factory, pipeline, benchmark, limiter, pinned=active_model is not None)

    async def start(self, *, serving: bool = True) -> None:
        """Migrate the database, resolve the salt of hashed user ids, and read (a server: follow) the active model."""
        await self.db.upgrade()
        salt = await self.user_hash_salt()
        self.pipeline.options.user_hash_salt = salt
        self.rate_limiter.salt = salt
        if not self.pinned:
            if not serving:
                self.pipeline.switcher.poll_s = 0
            await self.pipeline.start(apply_configured=serving)
        self.started.set()

    async def user_hash_salt(self) -> str:
        """USER_HASH_SALT, or else a random salt generated once and kept in the database: the first replica's
        insert wins and every replica reads it back, so all of them hash a user id the same way."""
        if self.settings.user_hash_salt:
            return self.settings.user_hash_salt
        return await self.db.setting_once(USER_HASH_SALT_KEY, secrets.token_hex(32))

    def warming_up(self) -> bool:
        """True while a configured model is still loading or training (a request may then get no answer)."""
        return self.warmup is not None and self.warmup.in_progress()

    async def aclose(self, *, flush_budget_s: float | None = None) -> None:
        """Shut down in the order that loses nothing: the background warm-up first (a training subprocess is
        stopped), shadow calls in flight briefly, then the request log is flushed (within `flush_budget_s`), and
        only then are the models closed (a vLLM engine can take long to stop) and the database's connections
        released."""
        try:
            if self.warmup is not None:
                await self.warmup.aclose()
            # shadow calls still running get a share of the budget, so their rows reach the log; then cancelled
            await self.pipeline.drain_shadows(SHADOW_DRAIN_S if flush_budget_s is None
                                              else min(SHADOW_DRAIN_S, flush_budget_s / 4))
        finally:
            try:
                await self._flush_request_log(flush_budget_s)
            finally:
                try:
                    await self.pipeline.aclose()
                finally:
                    await self.db.aclose(flush=False)  # flushed above, within its budget

    async def _flush_request_log(self, budget_s: float | None) -> None:
        request_log = self.db.request_log
        try:
            async with asyncio.timeout(budget_s):
                await request_log.aclose()
        except TimeoutError:
            log.error("shutdown: the request log could not be flushed within %.1f s; %d rows lost (%s)",
                      budget_s, request_log.pending, request_log.last_error)
        else:
            log.info("shutdown: %d request rows written, %d unwritten, %d dropped", request_log.written,
                     request_log.pending, request_log.dropped)
