"""USER_HASH_SALT: when unset, a random salt is generated once and kept in the database, the same for every
replica; request rows and rate-limit keys hash user ids with it (on SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import hashlib

from sqlalchemy import select

from bot.rate_limit import salted_hash
from bot.runtime import USER_HASH_SALT_KEY, Runtime
from bot.settings import Settings
from llm.pipeline import RequestContext
from storage.models import RateLimitCounter, RequestRecord
from tests.scripted import Scripted, ScriptedAdapter, builders
from tests.storage_helpers import migrated_database


def settings(url: str, **overrides) -> Settings:
    return Settings(**(dict(database_url=url, llm_model_version="custom", fallback_order="custom",
                            benchmark_every_n=0) | overrides))


def models():
    return builders(ScriptedAdapter("custom", default=Scripted("custom answers")))


async def test_an_unset_salt_is_generated_once_and_every_replica_uses_it(database_url):
    async with migrated_database(database_url):  # an empty database: no salt yet
        pass
    replicas = await asyncio.gather(*(Runtime.create(settings(database_url), builders=models(), serving=False)
                                      for _ in range(3)))
    try:
        salts = {runtime.pipeline.options.user_hash_salt for runtime in replicas}
        [salt] = salts
        assert len(salt) == 64 and salt != "bankbot"
        assert await replicas[0].db.get_setting(USER_HASH_SALT_KEY) == salt
        assert {runtime.rate_limiter.salt for runtime in replicas} == {salt}
        later = await Runtime.create(settings(database_url), builders=models(), serving=False)  # a restart
        assert later.pipeline.options.user_hash_salt == salt
        await later.aclose()
    finally:
        for runtime in replicas:
            await runtime.aclose()


async def test_request_rows_and_rate_limit_keys_hold_the_same_salted_hash(database_url):
    async with migrated_database(database_url):
        pass
    runtime = await Runtime.create(settings(database_url, rate_limit_user_per_min=5), builders=models(),
                                   serving=False)
    try:
        salt = runtime.pipeline.options.user_hash_salt
        await runtime.pipeline.generate("where is my card?", RequestContext(source="slack", user_id="U0BOB"))
        assert (await runtime.rate_limiter.check_slack_user("U0BOB")).count == 1
        await runtime.db.request_log.flush()
        async with runtime.db.engine.connect() as conn:
            [user_hash] = (await conn.execute(select(RequestRecord.user_hash))).scalars().all()
            keys = (await conn.execute(select(RateLimitCounter.key))).scalars().all()
        assert user_hash == salted_hash(salt, "U0BOB")
        assert user_hash != hashlib.sha256(b"bankbot:U0BOB").hexdigest()[:32]  # not the old, public salt
        assert keys == [f"slack:{user_hash}"]
    finally:
        await runtime.aclose()


async def test_a_configured_salt_is_used_and_nothing_is_stored(database_url):
    async with migrated_database(database_url):
        pass
    runtime = await Runtime.create(settings(database_url, user_hash_salt="pepper"), builders=models(),
                                   serving=False)
    try:
        assert runtime.pipeline.options.user_hash_salt == runtime.rate_limiter.salt == "pepper"
        assert await runtime.db.get_setting(USER_HASH_SALT_KEY) is None
    finally:
        await runtime.aclose()
