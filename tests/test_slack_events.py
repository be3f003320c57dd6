"""Mentions, DMs, thread follow-ups and deliveries, through the real AsyncApp over signed HTTP requests."""

from __future__ import annotations

import asyncio
import json
import logging
import time

from tests.fake_slack import BOT_ID, BOT_USER_ID
from tests.scripted import Scripted, ScriptedAdapter
from tests.slack_helpers import event_body, mention, message, signed_headers, slack_harness


async def test_a_mention_in_a_channel_gets_a_threaded_reply_with_a_footer():
    async with slack_harness() as h:
        event = mention(f"<@{BOT_USER_ID}> Where is my card?", channel="C0042")
        response = await h.post_event(event)
        assert response.status == 200
        [post] = await h.fake.wait_for(lambda f: f.posts())
        assert (post["channel"], post["thread_ts"]) == ("C0042", event["ts"])
        assert post["text"] == "Your card is on its way."
        section, feedback, footer = post["blocks"]
        assert section["text"]["text"] == "Your card is on its way."
        assert feedback["type"] == "context_actions"
        assert footer["type"] == "context"
        assert footer["elements"][0]["text"].startswith("custom_0.0.0 · ")
        assert "93% confidence" in footer["elements"][0]["text"]
        assert h.custom.prompts == ["Where is my card?"]  # the bot's own mention is stripped
        await h.fake.wait_for(lambda f: f.calls_to("reactions.remove"))
        [added] = h.fake.calls_to("reactions.add")
        assert (added["channel"], added["timestamp"]) == ("C0042", event["ts"])


async def test_the_event_is_acknowledged_before_the_model_answers():
    gate = asyncio.Event()
    custom = ScriptedAdapter("custom").enqueue(Scripted("Late but here.", gate=gate))
    async with slack_harness(custom=custom) as h:
        # The model cannot answer before the gate opens, so an ack that waited for it would never come.
        response = await asyncio.wait_for(h.post_event(mention(f"<@{BOT_USER_ID}> hello, my card?")), 30)
        assert response.status == 200 and not gate.is_set()
        await h.fake.wait_for(lambda f: f.calls_to("reactions.add"))  # progress is shown while it works
        assert h.fake.posts() == []  # the model is still blocked
        gate.set()
        [post] = await h.fake.wait_for(lambda f: f.posts())
        assert post["text"] == "Late but here."


async def test_a_direct_message_gets_a_reply_with_assistant_status():
    async with slack_harness() as h:
        event = message("Where is my card?", channel="D0007")
        await h.post_event(event)
        [post] = await h.fake.wait_for(lambda f: f.posts())
        assert post["channel"] == "D0007" and post.get("thread_ts") is None
        assert post["text"] == "Your card is on its way."
        [status] = h.fake.calls_to("assistant.threads.setStatus")
        assert (status["channel_id"], status["thread_ts"]) == ("D0007", event["ts"])
        assert h.fake.calls_to("reactions.add") == []


async def test_without_assistant_status_a_dm_shows_a_reaction_instead():
    async with slack_harness() as h:
        h.fake.errors["assistant.threads.setStatus"] = "not_allowed"
        event = message("Where is my card?", channel="D0007")
        await h.post_event(event)
        await h.fake.wait_for(lambda f: f.posts() and f.calls_to("reactions.remove"))
        [added] = h.fake.calls_to("reactions.add")
        assert added["timestamp"] == event["ts"]
        await h.post_event(message("And my PIN?", channel="D0007"))
        await h.fake.wait_for(lambda f: len(f.posts()) == 2)
        assert len(h.fake.calls_to("assistant.threads.setStatus")) == 1  # not asked again once refused


async def test_a_follow_up_in_a_thread_where_the_bot_answered_is_answered_without_a_mention():
    async with slack_harness() as h:
        first = mention(f"<@{BOT_USER_ID}> Where is my card?", channel="C0042")
        await h.post_event(first)
        await h.fake.wait_for(lambda f: f.posts())
        h.custom.enqueue(Scripted("You can track it in the app.", "card_delivery_estimate", 0.8))
        follow_up = message("Can I track it?", channel="C0042", channel_type="channel", thread_ts=first["ts"])
        await h.post_event(follow_up)
        posts = await h.fake.wait_for(lambda f: len(f.posts()) == 2 and f.posts())
        assert (posts[1]["thread_ts"], posts[1]["text"]) == (first["ts"], "You can track it in the app.")
        assert h.fake.calls_to("conversations.replies")[0]["ts"] == first["ts"]


async def test_a_follow_up_is_acknowledged_even_while_slack_cannot_show_the_thread():
    """conversations.replies hangs: the ack does not wait for it past its bound, and the follow-up is left alone."""
    async with slack_harness() as h:
        first = mention(f"<@{BOT_USER_ID}> Where is my card?", channel="C0042")
        await h.post_event(first)
        await h.fake.wait_for(lambda f: f.posts())
        h.fake.held["conversations.replies"] = release = asyncio.Event()
        follow_up = message("Can I track it?", channel="C0042", channel_type="channel", thread_ts=first["ts"])
        assert (await h.post_event(follow_up)).status == 200
        release.set()
        await h.post_event(message("Where is my card?", channel="D0001"))  # a sentinel that is answered
        await h.fake.wait_for(lambda f: len(f.posts()) == 2)
        await h.settled()
        assert [p["channel"] for p in h.fake.posts()] == ["C0042", "D0001"]


async def test_a_thread_the_bot_never_answered_in_is_left_alone():
    async with slack_harness() as h:
        h.fake.seed_message("C0042", user="U0009", text="lunch?", ts="1690000000.000001")
        await h.post_event(message("pizza", channel="C0042", channel_type="channel", user="U0008",
                                   thread_ts="1690000000.000001"))
        await h.fake.wait_for(lambda f: f.calls_to("conversations.replies"))
        await h.post_event(message("Where is my card?", channel="D0001"))  # a sentinel that is answered
        await h.fake.wait_for(lambda f: f.posts())
        await h.settled()  # the thread message's listener started before the sentinel's, and has finished
        assert [p["channel"] for p in h.fake.posts()] == ["D0001"]


async def test_the_bots_own_messages_bots_edits_and_deletions_get_no_reply():
    async with slack_harness() as h:
        ignored = [
            message("I am bankbot", user=BOT_USER_ID, bot_id=BOT_ID),
            message("another bot", user="U0500", bot_id="B0500", subtype="bot_message"),
            message("", user=None, subtype="message_changed", message={"text": "edited", "user": "U0001"}),
            message("", user=None, subtype="message_deleted", deleted_ts="1690000000.000001"),
            message("joined", subtype="channel_join"),
        ]
        for event in ignored:
            assert (await h.post_event(event)).status == 200
        await h.post_event(message("Where is my card?"))
        await h.fake.wait_for(lambda f: f.posts())
        await h.settled()
        assert len(h.fake.posts()) == 1
        assert h.custom.prompts == ["Where is my card?"]


async def test_a_channel_message_without_mention_or_thread_is_acknowledged_and_ignored():
    async with slack_harness() as h:
        response = await h.post_event(message("hello all", channel="C0042", channel_type="channel"))
        assert response.status == 200  # never 404, which Slack would retry


async def test_the_same_event_delivered_three_times_with_retries_gets_one_reply(caplog):
    caplog.set_level(logging.INFO, logger="bot.conversation")
    async with slack_harness() as h:
        event = mention(f"<@{BOT_USER_ID}> Where is my card?")
        statuses = []
        for retry in (None, 1, 2):
            statuses.append((await h.post_event(event, event_id="Ev0DUPLICATE", retry=retry)).status)
        assert statuses == [200, 200, 200]
        await h.fake.wait_for(lambda f: f.posts())
        await h.settled()
        assert sum("already handled" in r.getMessage() for r in caplog.records) == 2
        assert len(h.fake.posts()) == 1
        assert len(h.custom.prompts) == 1


async def test_concurrent_duplicate_deliveries_get_one_reply():
    async with slack_harness() as h:
        event = mention(f"<@{BOT_USER_ID}> Where is my card?")
        await asyncio.gather(*(h.post_event(event, event_id="Ev0SAME", retry=i or None) for i in range(3)))
        await h.fake.wait_for(lambda f: f.posts())
        await h.post_event(message("sentinel question"))
        await h.fake.wait_for(lambda f: len(f.posts()) >= 2)
        await h.settled()
        assert len(h.fake.posts()) == 2


async def test_a_bad_signature_or_a_stale_timestamp_gets_401():
    async with slack_harness() as h:
        body = event_body(mention(f"<@{BOT_USER_ID}> hi"))
        wrong = await h.post("/slack/events", body, signed_headers(body, secret="not-the-secret"))
        stale = await h.post("/slack/events", body, signed_headers(body, timestamp=int(time.time()) - 600))
        tampered = await h.post("/slack/events", body.replace("hi", "ho"), signed_headers(body))
        assert (wrong.status, stale.status, tampered.status) == (401, 401, 401)
        await h.post_event(message("sentinel question"))  # a signed event after them is answered
        await h.fake.wait_for(lambda f: f.posts())
        await h.settled()
        assert len(h.fake.posts()) == 1 and h.custom.prompts == ["sentinel question"]


async def test_url_verification_echoes_the_challenge():
    async with slack_harness() as h:
        body = '{"token": "legacy", "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P", ' \
               '"type": "url_verification"}'
        async with h.http.post(h.url + "/slack/events", data=body, headers=signed_headers(body)) as response:
            assert response.status == 200
            assert (await response.json())["challenge"] == "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"


async def test_health_is_still_served():
    async with slack_harness() as h, h.http.get(h.url + "/health") as response:
        assert (await response.json())["active_model"] == "custom"



async def test_socket_mode_receives_events_over_the_socket_and_still_serves_health():
    async with slack_harness(slack_app_token="xapp-test", slack_signing_secret=None) as h:
        await h.fake.wait_for(lambda f: f.calls_to("socket_connect"))
        event = mention(f"<@{BOT_USER_ID}> Where is my card?", channel="C0042")
        payload = json.loads(event_body(event))
        for attempt in (0, 1):  # a redelivery over the socket is answered once too
            await h.fake.send_envelope(payload, envelope_id=f"env-{attempt}", retry_attempt=attempt)
        acks = await h.fake.wait_for(lambda f: len(f.calls_to("socket_ack")) >= 2 and f.calls_to("socket_ack"))
        assert {a["envelope_id"] for a in acks} == {"env-0", "env-1"}
        [post] = await h.fake.wait_for(lambda f: f.posts())
        assert (post["channel"], post["thread_ts"]) == ("C0042", event["ts"])
        async with h.http.get(h.url + "/health") as response:
            assert response.status == 200
        body = event_body(mention("hi"))
        assert (await h.post("/slack/events", body, signed_headers(body))).status in (404, 405)
        await h.settled()  # both envelopes' listeners (they started before their acks were sent) are done
        assert len(h.fake.posts()) == 1
        [opened] = [c for c in h.fake.calls if c.method == "apps.connections.open"]
        assert opened.token == "xapp-test"  # the app-level token, not the bot token
