"""Settings, the model-switch audit trail, benchmark runs, Slack event claims: on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta, timezone

import pytest

from storage.database import Database
from tests.storage_helpers import settle_aiosqlite_threads  # noqa: F401 - fixture


async def test_ping(database):
    assert await database.ping() is True


@pytest.mark.usefixtures("settle_aiosqlite_threads")
async def test_ping_is_false_when_the_database_is_unreachable(tmp_path):
    for url in (f"sqlite+aiosqlite:///{tmp_path / 'missing' / 'x.db'}",
                "postgresql+asyncpg://postgres@127.0.0.1:1/test"):
        db = Database(url)
        try:
            assert await db.ping() is False
        finally:
            await db.aclose()


async def test_settings_round_trip_and_upsert(database):
    assert await database.get_setting("active_model") is None
    await database.put_setting("active_model", "custom")
    assert await database.get_setting("active_model") == "custom"
    await database.put_setting("active_model", "gemini")
    await database.put_setting("other", "x")
    assert await database.get_setting("active_model") == "gemini"
    assert await database.get_setting("other") == "x"


async def test_switches_newest_first_with_limit(database):
    await database.record_switch(from_model=None, to_model="custom", by="startup", ok=True)
    await database.record_switch(from_model="custom", to_model="gemini", by="U123", ok=True, reason="faster")
    await database.record_switch(from_model="gemini", to_model="qlora", by="api", ok=False, reason="no GPU")

    switches = await database.list_switches()
    assert [(s["from_model"], s["to_model"], s["by"], s["ok"], s["reason"]) for s in switches] == [
        ("gemini", "qlora", "api", False, "no GPU"),
        ("custom", "gemini", "U123", True, "faster"),
        (None, "custom", "startup", True, ""),
    ]
    assert all(s["at"].tzinfo is not None and s["at"].utcoffset() == timedelta(0) for s in switches)
    assert switches[0]["at"] >= switches[1]["at"] >= switches[2]["at"]
    assert [s["to_model"] for s in await database.list_switches(limit=2)] == ["qlora", "gemini"]


def _run(started: datetime, trigger: str, results: list[dict]) -> dict:
    return {"started_at": started, "finished_at": started + timedelta(seconds=42), "trigger": trigger,
            "sample_size": 200, "recommendation": f"use custom ({trigger})", "results": results}


async def test_benchmark_run_round_trip(database):
    t0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
    ok = {"model": "custom", "model_version": "custom_model_built_0.1.0", "device": "cpu", "available": True,
          "reason": "", "n": 200, "latency_p50_ms": 3.5, "latency_p99_ms": 12.25, "accuracy": 0.91,
          "prompt_tokens": 4000, "completion_tokens": 200, "errors": 1, "cost_usd": None}
    down = {"model": "qlora", "model_version": None, "device": "gpu", "available": False,
            "reason": "no GPU", "n": 0, "latency_p50_ms": None, "latency_p99_ms": None, "accuracy": None,
            "prompt_tokens": 0, "completion_tokens": 0, "errors": 0, "cost_usd": None}
    older = await database.save_benchmark_run(_run(t0, "periodic", [ok]))
    # a non-UTC timezone comes back as the same instant in UTC
    plus_two = datetime(2025, 3, 2, 14, 0, tzinfo=timezone(timedelta(hours=2)))
    newer = await database.save_benchmark_run(_run(plus_two, "manual", [ok, down]))
    assert newer != older

    [latest] = await database.latest_benchmark_runs()
    assert latest["id"] == newer and latest["trigger"] == "manual" and latest["sample_size"] == 200
    assert latest["started_at"] == datetime(2025, 3, 2, 12, 0, tzinfo=UTC)
    assert latest["started_at"].tzinfo is not None and latest["started_at"].utcoffset() == timedelta(0)
    assert latest["recommendation"] == "use custom (manual)"
    got = [{key: r[key] for key in ok} for r in latest["results"]]
    assert got == [ok, down]
    assert all(r["run_id"] == newer for r in latest["results"])

    both = await database.latest_benchmark_runs(limit=5)
    assert [run["id"] for run in both] == [newer, older]
    assert [len(run["results"]) for run in both] == [2, 1]


async def test_claim_event_once(database):
    assert await database.claim_event("Ev1") is True
    assert await database.claim_event("Ev1") is False
    assert await database.claim_event("Ev2") is True


async def test_concurrent_claims_across_replicas_exactly_one_wins(database, database_url):
    replica = Database(database_url)  # a second engine, as another process would have
    try:
        claims = [db.claim_event("Ev-race") for _ in range(10) for db in (database, replica)]
        results = await asyncio.gather(*claims)
        assert results.count(True) == 1 and results.count(False) == len(claims) - 1
    finally:
        await replica.aclose()


async def test_truncate_all_empties_tables_but_keeps_migrations(database):
    await database.put_setting("k", "v")
    await database.claim_event("e")
    await database.truncate_all()
    assert await database.get_setting("k") is None
    assert await database.claim_event("e") is True
    await database.upgrade()  # still at head: nothing to re-create


async def test_old_event_ids_are_pruned(database):
    from datetime import UTC, datetime, timedelta

    assert await database.claim_event("Ev-old")
    assert await database.prune_events(datetime.now(UTC) - timedelta(hours=1)) == 0
    assert await database.prune_events(datetime.now(UTC) + timedelta(seconds=1)) == 1
    assert await database.claim_event("Ev-old")  # forgotten, so claimable again
