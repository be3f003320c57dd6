"""llm-switch and llm-bench in Teams: typed with or without the slash, after a mention; admins by Entra object id;
private replies (targeted in channels); tables as Adaptive Cards."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.teams.commands import parse_command
from tests.teams_helpers import activity, teams_harness, user

ADMIN = user(7)  # aad-user-7


def test_commands_are_parsed_with_or_without_their_slash():
    assert parse_command("/llm-switch gemini") == ("llm-switch", "gemini")
    assert parse_command("LLM-BENCH history 3") == ("llm-bench", "history 3")
    assert parse_command("llm-switch") == ("llm-switch", "")
    assert parse_command("how do I switch my card?") is None


async def test_an_admin_switches_every_replica_with_an_audit_line(monkeypatch):
    async with teams_harness(monkeypatch, teams_admin_aad_ids="aad-user-7, aad-user-8",
                             teams_admin_conversation="19:audit@thread.tacv2") as h:
        await h.send(activity("/llm-switch gemini", h.connector.url, kind="channel", mention=True, sender=ADMIN))
        replies = await h.connector.wait_for(lambda c: len(c.messages()) >= 2 and c.messages())
        [reply] = [p for p in replies if p.conversation.startswith("19:channel")]
        assert "Switched from **custom** to **gemini**" in reply.text
        assert reply.query == {"isTargetedActivity": "true"}  # only the admin sees it in the channel
        [audit] = [p for p in replies if p.conversation == "19:audit@thread.tacv2"]
        assert "Person 7" in audit.text and "`gemini`" in audit.text
        assert h.runtime.pipeline.active_model == "gemini"
        assert await h.runtime.db.get_setting("active_model") == "gemini"  # what the other replicas follow
        [switch] = await h.runtime.db.list_switches()
        assert (switch["to_model"], switch["ok"], switch["by"]) == ("gemini", True, "teams:aad-user-7")
        assert h.custom.prompts == []  # a command is not a question


async def test_a_non_admin_is_refused_politely_and_the_attempt_is_recorded(monkeypatch):
    async with teams_harness(monkeypatch, teams_admin_aad_ids="aad-user-7") as h:
        await h.send(activity("llm-switch gemini", h.connector.url, kind="personal", sender=user(3)))
        [reply] = await h.connector.wait_for(lambda c: c.messages())
        assert reply.text.startswith("Sorry, only bankbot's admins") and "recorded" in reply.text
        assert reply.query == {}  # a 1:1 chat is private already
        assert h.runtime.pipeline.active_model == "custom"
        [switch] = await h.runtime.db.list_switches()
        assert (switch["ok"], switch["reason"], switch["by"]) == (False, "not an admin", "teams:aad-user-3")


async def test_an_unknown_model_is_not_switched_and_no_argument_lists_the_choices(monkeypatch):
    async with teams_harness(monkeypatch, teams_admin_aad_ids="aad-user-7") as h:
        await h.send(activity("llm-switch gpt-9", h.connector.url, sender=ADMIN))
        [reply] = await h.connector.wait_for(lambda c: c.messages())
        assert reply.text.startswith("Not switched; **custom** stays active.") and "gpt-9" in reply.text
        assert h.runtime.pipeline.active_model == "custom"
        await h.send(activity("llm-switch", h.connector.url, sender=ADMIN))
        replies = await h.connector.wait_for(lambda c: len(c.messages()) >= 2 and c.messages())
        assert "Active model: **custom**" in replies[1].text and "`gemini`" in replies[1].text


async def test_bench_summary_is_an_adaptive_card_with_a_table(monkeypatch):
    async with teams_harness(monkeypatch, teams_admin_aad_ids="aad-user-7") as h:
        now = datetime.now(UTC)
        run_id = await h.runtime.db.save_benchmark_run({
            "trigger": "cli", "sample_size": 20, "started_at": now, "finished_at": now,
            "recommendation": "custom is both fastest and most accurate",
            "results": [{"model": "custom", "model_version": "custom_model_built_0.0.0", "device": "cpu",
                         "available": True, "n": 20, "latency_p50_ms": 3.2, "latency_p99_ms": 9.5,
                         "accuracy": 0.915, "errors": 0}]})
        await h.send(activity("llm-bench summary", h.connector.url, kind="channel", mention=True, sender=ADMIN))
        [reply] = await h.connector.wait_for(lambda c: c.messages())
        [attachment] = reply.activity["attachments"]
        card = attachment["content"]
        assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive" and card["version"] == "1.5"
        [table] = [b for b in card["body"] if b["type"] == "Table"]
        cells = [[c["items"][0]["text"] for c in row["cells"]] for row in table["rows"]]
        assert cells[0][:5] == ["Model", "Device", "Latency p50", "P99", "Accuracy"]
        assert cells[1][:5] == ["custom", "cpu", "3.2 ms", "9.5 ms", "91.5%"]
        assert any(f"#{run_id}" in b.get("text", "") for b in card["body"])


async def test_bench_by_a_non_admin_or_with_bad_arguments(monkeypatch):
    async with teams_harness(monkeypatch, teams_admin_aad_ids="aad-user-7") as h:
        await h.send(activity("llm-bench summary", h.connector.url, sender=user(4)))
        await h.send(activity("llm-bench sideways", h.connector.url, sender=ADMIN))
        replies = await h.connector.wait_for(lambda c: len(c.messages()) >= 2 and c.messages())
        texts = sorted(r.text for r in replies)
        assert texts[0].startswith("Sorry, only bankbot's admins") and texts[1].startswith("Usage:")
