"""Wires settings, storage and the llm package into one running system."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cache

from bot.rate_limit import RateLimiter
from bot.settings import Settings
from llm import banking77
from llm.benchmark import BenchmarkRunner
from llm.factory import AdapterBuilder, ModelFactory
from llm.pipeline import BankingLLMPipeline, PipelineOptions
from storage.database import Database


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

    @classmethod
    async def create(cls, settings: Settings, *, builders: dict[str, AdapterBuilder | str] | None = None,
                     active_model: str | None = None, serving: bool = True) -> Runtime:
        """Migrate the database and build the pipeline.

        `serving`: a server applies a changed LLM_MODEL_VERSION and follows switches made by other replicas;
        one-off commands only read the active model. `active_model` pins the model for this process
        (as `bankbot ask --model`), ignoring the database.
        """
        if settings.banking77_dir:  # also when it is set only in .env: llm.banking77 reads the environment
            os.environ.setdefault("BANKING77_DIR", str(settings.banking77_dir))
        db = Database(settings.database_url)
        await db.upgrade()
        factory = ModelFactory(settings, builders)
        models = list(dict.fromkeys([factory.resolve(settings.llm_model_version), *settings.fallback_names]))
        benchmark = BenchmarkRunner(factory, _test_split, db, settings.benchmark_log, models)
        options = PipelineOptions.from_settings(settings, store_messages=settings.store_messages,
                                                user_hash_salt=settings.user_hash_salt)
        pipeline = BankingLLMPipeline(factory, db, options, default_model=active_model or settings.llm_model_version,
                                      benchmark=benchmark)
        if active_model is None:
            if not serving:
                pipeline.switcher.poll_s = 0
            await pipeline.start(apply_configured=serving)
        limiter = RateLimiter(db, settings.rate_limit_user_per_min, settings.rate_limit_api_per_min)
        return cls(settings, db, factory, pipeline, benchmark, limiter)

    async def aclose(self) -> None:
        await self.pipeline.aclose()
        await self.db.aclose()
