"""/llm-switch and /llm-bench through the real AsyncApp, answered at the fake's response URLs."""

from __future__ import annotations

from datetime import UTC, datetime

from storage.database import Database
from tests.scripted import ScriptedAdapter
from tests.slack_helpers import slack_harness


async def test_an_admin_switches_the_model_for_every_replica_with_an_audit_line():
    async with slack_harness(slack_admin_user_ids="U0ADMIN, U0OTHER", admin_channel="C0AUDIT") as h:
        response, body, name = await h.command("/llm-switch", "gemini", user="U0ADMIN")
        assert response.status == 200 and body == ""
        [reply] = await h.responses(name)
        assert reply["response_type"] == "ephemeral"
        assert "Switched from *custom* to *gemini*" in reply["text"]
        assert h.runtime.pipeline.active_model == "gemini"
        assert await h.runtime.db.get_setting("active_model") == "gemini"  # what the other replicas follow
        [audit] = await h.fake.wait_for(lambda f: f.posts())
        assert audit["channel"] == "C0AUDIT" and "<@U0ADMIN>" in audit["text"] and "`gemini`" in audit["text"]
        [switch] = await h.runtime.db.list_switches()
        assert (switch["to_model"], switch["ok"], switch["by"]) == ("gemini", True, "slack:U0ADMIN")


async def test_workspace_admins_are_admins_when_no_ids_are_configured():
    async with slack_harness() as h:
        h.fake.users["U0OWNER"] = {"is_owner": True}
        _, _, name = await h.command("/llm-switch", "gemini_2.0_flash_v1.0.0", user="U0OWNER")
        [reply] = await h.responses(name)
        assert "to *gemini*" in reply["text"]
        assert h.fake.calls_to("users.info")[0]["user"] == "U0OWNER"


async def test_a_non_admin_is_refused_politely_and_the_attempt_is_recorded():
    async with slack_harness(admin_channel="C0AUDIT") as h:
        h.fake.users["U0PLAIN"] = {"is_admin": False}
        _, _, name = await h.command("/llm-switch", "gemini", user="U0PLAIN")
        [reply] = await h.responses(name)
        assert reply["response_type"] == "ephemeral" and reply["text"].startswith("Sorry, only")
        assert h.runtime.pipeline.active_model == "custom"
        [switch] = await h.runtime.db.list_switches()
        assert (switch["to_model"], switch["ok"], switch["reason"], switch["by"]) == (
            "gemini", False, "not an admin", "slack:U0PLAIN")


async def test_an_unknown_model_is_not_switched_to():
    async with slack_harness(slack_admin_user_ids="U0ADMIN") as h:
        _, _, name = await h.command("/llm-switch", "gpt-9", user="U0ADMIN")
        [reply] = await h.responses(name)
        assert reply["text"].startswith("Not switched; *custom* stays active.") and "gpt-9" in reply["text"]
        assert h.runtime.pipeline.active_model == "custom"


async def test_an_unhealthy_target_is_not_switched_to():
    broken = ScriptedAdapter("gemini", load_error=RuntimeError("GEMINI_API_KEY is not set"))
    async with slack_harness(gemini=broken, slack_admin_user_ids="U0ADMIN") as h:
        _, _, name = await h.command("/llm-switch", "gemini", user="U0ADMIN")
        [reply] = await h.responses(name)
        assert "gemini is unhealthy" in reply["text"] and "GEMINI_API_KEY" in reply["text"]
        assert h.runtime.pipeline.active_model == "custom"
        [switch] = await h.runtime.db.list_switches()
        assert switch["ok"] is False


async def test_without_an_argument_it_shows_the_active_model_and_each_choices_health():
    broken = ScriptedAdapter("gemini", load_error=RuntimeError("no key"))
    async with slack_harness(gemini=broken, slack_admin_user_ids="U0ADMIN") as h:
        _, _, name = await h.command("/llm-switch", "", user="U0ADMIN")
        [reply] = await h.responses(name)
        assert "Active model: *custom*" in reply["text"]
        assert "`custom` (custom_model_built_0.0.0): healthy" in reply["text"]
        assert "`gemini`" in reply["text"] and "unhealthy: no key" in reply["text"]


async def _seed_run(db: Database, trigger: str, accuracy: float) -> int:
    now = datetime.now(UTC)
    return await db.save_benchmark_run({
        "trigger": trigger, "sample_size": 20, "started_at": now, "finished_at": now,
        "recommendation": "custom is both fastest and most accurate",
        "results": [{"model": "custom", "model_version": "custom_model_built_0.0.0", "device": "cpu",
                     "available": True, "n": 20, "latency_p50_ms": 3.2, "latency_p99_ms": 9.5,
                     "accuracy": accuracy, "errors": 0},
                    {"model": "gemini", "device": "cloud", "available": False, "reason": "no key", "n": 20,
                     "errors": 20}]})


async def test_bench_summary_posts_the_table_and_recommendation_and_a_chart_when_charts_are_on():
    async with slack_harness(charts=True, slack_admin_user_ids="U0001") as h:
        run_id = await _seed_run(h.runtime.db, "cli", 0.915)
        await h.runtime.pipeline.generate("Where is my card?")
        await h.runtime.db.request_log.flush()
        _, _, name = await h.command("/llm-bench", "summary", channel="C0BENCH")
        [reply] = await h.responses(name)
        assert reply["response_type"] == "in_channel"
        text = reply["text"]
        for header in ("Model", "Device", "Latency p50", "P99", "Accuracy", "Requests", "Error rate"):
            assert header in text
        assert f"#{run_id}" in text and "91.5%" in text and "3.2 ms" in text and "9.5 ms" in text
        custom_row = next(line for line in text.splitlines() if line.startswith("custom"))
        assert custom_row.split()[-2:] == ["1", "0.0%"]  # one live request, no errors
        assert "Recommendation:* custom is both fastest and most accurate" in text
        [upload] = await h.fake.wait_for(lambda f: f.calls_to("upload"))
        assert upload["png"] and upload["size"] > 1000
        [complete] = await h.fake.wait_for(lambda f: f.calls_to("files.completeUploadExternal"))
        assert complete["channel_id"] == "C0BENCH"


async def test_bench_summary_without_charts_uploads_nothing():
    async with slack_harness(slack_admin_user_ids="U0001") as h:
        await _seed_run(h.runtime.db, "cli", 0.9)
        _, _, name = await h.command("/llm-bench", "summary")
        await h.responses(name)
        assert h.fake.calls_to("files.getUploadURLExternal") == []


async def test_bench_run_acknowledges_at_once_then_posts_the_table(banking77_dir):
    async with slack_harness(slack_admin_user_ids="U0001") as h:
        response, body, name = await h.command("/llm-bench", "run")
        assert response.status == 200 and "Benchmark started on 4 questions" in body
        [reply] = await h.responses(name)
        assert reply["response_type"] == "in_channel"
        assert "(slack, 4 questions" in reply["text"] and "Recommendation:" in reply["text"]
        [run] = await h.runtime.db.latest_benchmark_runs(1)
        assert run["trigger"] == "slack" and {r["model"] for r in run["results"]} == {"custom", "gemini"}


async def test_bench_history_shows_the_trend_over_the_last_n_runs():
    async with slack_harness(slack_admin_user_ids="U0001") as h:
        for accuracy in (0.80, 0.85, 0.90):
            await _seed_run(h.runtime.db, "periodic", accuracy)
        _, _, name = await h.command("/llm-bench", "history 2")
        [reply] = await h.responses(name)
        text = reply["text"]
        assert "last 2 run(s)" in text
        assert "85.0% · 3.2 ms" in text and "90.0% · 3.2 ms" in text and "80.0%" not in text
        assert text.index("85.0%") < text.index("90.0%")  # oldest first


async def test_bench_with_a_bad_argument_gets_usage_help():
    async with slack_harness() as h:
        for text in ("", "sumary", "history lots", "history 0", "run now"):
            response, body, _ = await h.command("/llm-bench", text)
            assert response.status == 200 and body.startswith("Usage:"), text


async def test_bench_is_for_admins_only():
    async with slack_harness(slack_admin_user_ids="U0ADMIN") as h:
        for text in ("summary", "run", "history 3"):
            response, body, _ = await h.command("/llm-bench", text, user="U0PLAIN")
            assert response.status == 200 and "only bankbot's admins" in body, text
        assert await h.runtime.db.latest_benchmark_runs(1) == []
