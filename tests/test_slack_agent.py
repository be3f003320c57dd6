"""The agent view, the App Home, channel progress, expiring streams and /llm-bench tables, over signed HTTP
against the fake Web API."""

from __future__ import annotations

from tests.fake_slack import BOT_USER_ID
from tests.scripted import Scripted, ScriptedAdapter
from tests.slack_helpers import action_body, form_headers, mention, slack_harness
from tests.test_slack_commands import _seed_run

LONG = " ".join(["Your card is on its way and should arrive within five working days."] * 12)


async def test_opening_the_messages_tab_sets_the_suggested_prompts():
    async with slack_harness(suggested_prompts="Where is my card?|How do I top up?") as h:
        await h.post_event({"type": "app_home_opened", "user": "U0001", "channel": "D0009", "tab": "messages"})
        [call] = await h.fake.wait_for(lambda f: f.calls_to("assistant.threads.setSuggestedPrompts"))
        assert call["channel_id"] == "D0009"
        assert [p["message"] for p in call["prompts"]] == ["Where is my card?", "How do I top up?"]
        assert h.fake.calls_to("views.publish") == []


async def test_the_home_tab_is_the_admin_dashboard_for_admins_and_help_for_others():
    async with slack_harness(slack_admin_user_ids="U0ADMIN") as h:
        await _seed_run(h.runtime.db, "cli", 0.915)
        await h.post_event({"type": "app_home_opened", "user": "U0ADMIN", "channel": "D1", "tab": "home"})
        await h.post_event({"type": "app_home_opened", "user": "U0PLAIN", "channel": "D2", "tab": "home"})
        published = await h.fake.wait_for(lambda f: len(f.calls_to("views.publish")) == 2 and f.calls_to(
            "views.publish"))
        views = {p["user_id"]: p["view"] for p in published}
        admin = views["U0ADMIN"]["blocks"]
        text = str(admin)
        assert "Active model:* `custom`" in text and "custom → gemini" in text and "Checked at" in text
        [table] = [b for b in admin if b["type"] == "table"]
        assert table["rows"][0][0]["text"] == "Model" and table["rows"][1][4]["text"] == "91.5%"
        select = next(b["accessory"] for b in admin if b.get("accessory", {}).get("type") == "static_select")
        assert select["confirm"]["confirm"]["text"] == "Switch" and select["initial_option"]["value"] == "custom"
        assert any(e.get("action_id") == "home_run_benchmark" for b in admin for e in b.get("elements", []))
        plain = str(views["U0PLAIN"]["blocks"])
        assert "For example" in plain and "static_select" not in plain and "table" not in plain


async def test_the_home_select_switches_with_audit_and_a_non_admin_is_refused():
    async with slack_harness(slack_admin_user_ids="U0ADMIN", admin_channel="C0AUDIT") as h:
        action = {"action_id": "home_switch_model", "type": "static_select",
                  "selected_option": {"value": "gemini", "text": {"type": "plain_text", "text": "gemini"}}}
        refused = action_body(action, user="U0PLAIN")
        assert (await h.post("/slack/events", refused, form_headers(refused))).status == 200
        await h.fake.wait_for(lambda f: f.calls_to("views.publish"))
        assert h.runtime.pipeline.active_model == "custom"
        body = action_body(action, user="U0ADMIN")
        await h.post("/slack/events", body, form_headers(body))
        await h.fake.wait_for(lambda f: len(f.calls_to("views.publish")) == 2)
        assert h.runtime.pipeline.active_model == "gemini"
        switches = await h.runtime.db.list_switches()
        assert {(s["by"], s["ok"]) for s in switches} == {("slack:U0PLAIN", False), ("slack:U0ADMIN", True)}
        audits = [p["text"] for p in h.fake.posts() if p["channel"] == "C0AUDIT"]
        assert any("<@U0PLAIN> tried" in a for a in audits) and any("switched the model" in a for a in audits)
        refreshed = h.fake.calls_to("views.publish")[-1]
        assert refreshed["user_id"] == "U0ADMIN" and "Switched from *custom* to *gemini*" in str(refreshed["view"])


async def test_bench_summary_carries_a_table_block_with_a_text_fallback():
    async with slack_harness(slack_admin_user_ids="U0001") as h:
        run_id = await _seed_run(h.runtime.db, "cli", 0.915)
        _, _, name = await h.command("/llm-bench", "summary")
        [reply] = await h.responses(name)
        [table] = [b for b in reply["blocks"] if b["type"] == "table"]
        cells = [[c["text"] for c in row] for row in table["rows"]]
        assert cells[0] == ["Model", "Device", "Latency p50", "P99", "Accuracy", "Requests", "Error rate"]
        assert cells[1][:5] == ["custom", "cpu", "3.2 ms", "9.5 ms", "91.5%"]
        assert cells[2][:3] == ["gemini", "cloud", "unavailable"]
        assert f"#{run_id}" in reply["text"] and "```" in reply["text"]  # the fallback: the same table as text


async def test_a_long_history_pages_into_several_tables():
    async with slack_harness(slack_admin_user_ids="U0001") as h:
        for _ in range(30):
            await _seed_run(h.runtime.db, "periodic", 0.9)
        _, _, name = await h.command("/llm-bench", "history 30")
        first, second = await h.responses(name, 2)
        assert "page 1 of 2" in first["text"] and "page 2 of 2" in second["text"]
        assert [len([b for b in m["blocks"] if b["type"] == "table"][0]["rows"]) for m in (first, second)] == [26, 6]


async def test_the_native_chart_where_the_workspace_accepts_it():
    async with slack_harness(charts=True, slack_admin_user_ids="U0001") as h:
        h.fake.data_visualization = True
        await _seed_run(h.runtime.db, "cli", 0.915)
        _, _, name = await h.command("/llm-bench", "summary", channel="C0BENCH")
        await h.responses(name)
        [chart] = await h.fake.wait_for(lambda f: [p for p in f.posts() if p.get("blocks")])
        block = chart["blocks"][0]
        assert block["type"] == "data_visualization" and block["chart"]["series"][0]["data"][0]["value"] == 91.5
        assert h.fake.calls_to("upload") == []


async def test_an_expiring_stream_is_finished_with_chat_update_once():
    custom = ScriptedAdapter("custom", default=Scripted(LONG, "card_arrival", 0.9))
    async with slack_harness(custom=custom) as h:
        h.fake.expire_stream_after = 1
        await h.post_event(mention(f"<@{BOT_USER_ID}> where is my card?"))
        [update] = await h.fake.wait_for(lambda f: f.calls_to("chat.update"))
        [streamed] = h.fake.messages["C0001"]  # the message chat.startStream began
        assert update["ts"] == streamed["ts"] and update["text"] == LONG
        await h.settled()
        assert h.fake.posts() == [] and h.fake.calls_to("chat.stopStream") == []  # once: no second message


async def test_short_answers_are_posted_and_long_ones_stream():
    async with slack_harness(stream_min_chars=40) as h:
        await h.post_event(mention(f"<@{BOT_USER_ID}> where is my card?"))  # "Your card is on its way." (24)
        await h.fake.wait_for(lambda f: f.posts())
        assert h.fake.calls_to("chat.startStream") == []


async def test_channel_threads_show_status_and_fall_back_to_the_reaction_when_refused():
    async with slack_harness() as h:
        h.fake.status_in_channels = True
        event = mention(f"<@{BOT_USER_ID}> where is my card?", channel="C0042")
        await h.post_event(event)
        await h.fake.wait_for(lambda f: f.posts())
        [status] = h.fake.calls_to("assistant.threads.setStatus")
        assert (status["channel_id"], status["thread_ts"]) == ("C0042", event["ts"]) and status["loading_messages"]
        assert h.fake.calls_to("reactions.add") == []
        h.fake.status_in_channels = False  # a workspace where Slack refuses it
        await h.post_event(mention(f"<@{BOT_USER_ID}> and my PIN?", channel="C0042"))
        await h.fake.wait_for(lambda f: len(f.posts()) == 2 and f.calls_to("reactions.add"))
        assert len(h.fake.calls_to("assistant.threads.setStatus")) == 2
