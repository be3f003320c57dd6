"""Driving the real Slack app over HTTP: a runtime on scripted models, the fake Web API, signed requests."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import aiohttp
from aiohttp.test_utils import TestServer
from slack_sdk.signature import SignatureVerifier

from bot.inflight import Work
from bot.runtime import Runtime
from bot.server import SLACK_WORK, build_web_app
from bot.settings import Settings
from tests.fake_slack import BOT_USER_ID, TEAM_ID, FakeSlack
from tests.scripted import Scripted, ScriptedAdapter, builders

SECRET = "test-signing-secret"
_ids = itertools.count(1)


def signed_headers(body: str, *, secret: str = SECRET, timestamp: int | None = None,
                   content_type: str = "application/json", retry: int | None = None) -> dict[str, str]:
    ts = str(int(time.time()) if timestamp is None else timestamp)
    headers = {"X-Slack-Request-Timestamp": ts, "Content-Type": content_type,
               "X-Slack-Signature": SignatureVerifier(secret).generate_signature(timestamp=ts, body=body)}
    if retry is not None:
        headers |= {"X-Slack-Retry-Num": str(retry), "X-Slack-Retry-Reason": "http_timeout"}
    return headers


def event_body(event: dict[str, Any], event_id: str | None = None) -> str:
    return json.dumps({
        "token": "legacy", "team_id": TEAM_ID, "api_app_id": "A0001", "type": "event_callback",
        "event_id": event_id or f"Ev{next(_ids):08d}", "event_time": int(time.time()), "event": event,
        "authorizations": [{"team_id": TEAM_ID, "user_id": BOT_USER_ID, "is_bot": True}],
    })


def mention(text: str, *, channel: str = "C0001", user: str = "U0001", ts: str | None = None,
            thread_ts: str | None = None) -> dict[str, Any]:
    event = {"type": "app_mention", "user": user, "text": text, "channel": channel,
             "ts": ts or f"1690000000.{next(_ids):06d}"}
    return event | ({"thread_ts": thread_ts} if thread_ts else {})


def message(text: str, *, channel: str = "D0001", channel_type: str = "im", user: str | None = "U0001",
            ts: str | None = None, **extra: Any) -> dict[str, Any]:
    event = {"type": "message", "channel": channel, "channel_type": channel_type, "text": text,
             "ts": ts or f"1690000000.{next(_ids):06d}"}
    return event | ({"user": user} if user else {}) | extra


@dataclass
class SlackHarness:
    fake: FakeSlack
    runtime: Runtime
    url: str
    http: aiohttp.ClientSession
    custom: ScriptedAdapter
    gemini: ScriptedAdapter
    work: Work | None = None  # the listener tasks running after their ack
    app: Any = None  # the aiohttp application (bot.server.build_web_app)

    async def settled(self, within_s: float = 30.0) -> None:
        """Wait until no Slack listener is running. Listener tasks start in the order their events were
        acknowledged, so after a later event was answered, every earlier event's listener has started."""
        deadline = time.monotonic() + within_s
        while self.work.in_flight:
            assert time.monotonic() < deadline, f"{self.work.in_flight} Slack listeners still running"
            await asyncio.wait(set(self.work.tasks), timeout=max(deadline - time.monotonic(), 0))
            await asyncio.sleep(0)

    async def post_event(self, event: dict[str, Any], *, event_id: str | None = None, retry: int | None = None,
                         **sign: Any) -> aiohttp.ClientResponse:
        body = event_body(event, event_id)
        return await self.post("/slack/events", body, signed_headers(body, retry=retry, **sign))

    async def post(self, path: str, body: str, headers: dict[str, str]) -> aiohttp.ClientResponse:
        async with self.http.post(self.url + path, data=body.encode(), headers=headers) as response:
            await response.read()
            return response

    async def command(self, command: str, text: str = "", *, user: str = "U0001",
                      channel: str = "C0001") -> tuple[aiohttp.ClientResponse, str, str]:
        """Post a slash command; returns (response, its body, the response_url name)."""
        name = f"r{next(_ids)}"
        body = urlencode({"token": "legacy", "team_id": TEAM_ID, "channel_id": channel, "user_id": user,
                          "command": command, "text": text, "response_url": self.fake.response_url(name),
                          "trigger_id": "1.2.3", "api_app_id": "A0001"})
        async with self.http.post(self.url + "/slack/events", data=body.encode(),
                                  headers=signed_headers(body, content_type="application/x-www-form-urlencoded")
                                  ) as response:
            return response, await response.text(), name

    async def responses(self, name: str, count: int = 1) -> list[dict[str, Any]]:
        return await self.fake.wait_for(lambda f: (r := f.calls_to("response:" + name)) and len(r) >= count and r)


@asynccontextmanager
async def slack_harness(*, custom: ScriptedAdapter | None = None, gemini: ScriptedAdapter | None = None,
                        **settings: Any):
    fake = await FakeSlack().start()
    custom = custom or ScriptedAdapter("custom", default=Scripted("Your card is on its way.", "card_arrival", 0.93))
    gemini = gemini or ScriptedAdapter("gemini", default=Scripted("Gemini says hello.", "card_arrival", 0.8))
    values = dict(slack_bot_token="xoxb-test", slack_signing_secret=SECRET, slack_api_url=fake.api_url,
                  llm_model_version="custom", fallback_order="custom,gemini", benchmark_every_n=0,
                  benchmark_sample=4) | settings
    runtime = await Runtime.create(Settings(**values), builders=builders(custom, gemini))
    web_app = build_web_app(runtime)
    server = TestServer(web_app, host="127.0.0.1")
    await server.start_server()
    http = aiohttp.ClientSession()
    try:
        yield SlackHarness(fake, runtime, str(server.make_url("")).rstrip("/"), http, custom, gemini,
                           web_app.get(SLACK_WORK), web_app)
    finally:
        await http.close()
        await server.close()
        await asyncio.sleep(0)  # let listener tasks that already finished release their references
        await runtime.aclose()
        await fake.stop()


def action_body(action: dict[str, Any], *, user: str = "U0001", team: str = TEAM_ID) -> str:
    """A block_actions payload from the App Home, form-encoded as Slack sends it."""
    payload = {"type": "block_actions", "team": {"id": team}, "user": {"id": user, "team_id": team},
               "api_app_id": "A0001", "trigger_id": "1.2.3", "view": {"type": "home", "id": "V1"},
               "actions": [action | {"block_id": "b", "action_ts": str(time.time())}]}
    return urlencode({"payload": json.dumps(payload)})


def form_headers(body: str) -> dict[str, str]:
    return signed_headers(body, content_type="application/x-www-form-urlencoded")
