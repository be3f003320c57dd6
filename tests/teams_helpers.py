"""Driving the real Teams front end over HTTP: a runtime on scripted models, the fake Bot Connector, activities
as Teams sends them, signed with the test identity."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp
from aiohttp.test_utils import TestServer

from bot.inflight import Work
from bot.runtime import Runtime
from bot.server import TEAMS_WORK, build_web_app
from bot.settings import Settings
from tests.fake_connector import APP_ID, TENANT_ID, FakeConnector, Identity
from tests.scripted import Scripted, ScriptedAdapter, builders

BOT = {"id": f"28:{APP_ID}", "name": "bankbot"}
_ids = itertools.count(1)
SDK_ENV = {"CONNECTIONS__SERVICE_CONNECTION__SETTINGS__CLIENTID": APP_ID,
           "CONNECTIONS__SERVICE_CONNECTION__SETTINGS__CLIENTSECRET": "test-secret",
           "CONNECTIONS__SERVICE_CONNECTION__SETTINGS__TENANTID": TENANT_ID,
           "CONNECTIONS__SERVICE_CONNECTION__SETTINGS__AUTHTYPE": "ClientSecret"}


def user(n: int = 1) -> dict[str, Any]:
    return {"id": f"29:1user{n}", "name": f"Person {n}", "aadObjectId": f"aad-user-{n}"}


def activity(text: str, service_url: str, *, kind: str = "personal", mention: bool = False,
             sender: dict[str, Any] | None = None, conversation: str | None = None,
             activity_id: str | None = None) -> dict[str, Any]:
    """A message activity as Teams posts it: a 1:1 chat, a group chat or a channel (id with ;messageid=)."""
    activity_id = activity_id or f"17000000000{next(_ids):05d}"
    if conversation is None:
        conversation = {"personal": f"a:1personal{activity_id}",
                        "groupChat": f"19:group{activity_id}@thread.v2",
                        "channel": f"19:channel@thread.tacv2;messageid={activity_id}"}[kind]
    entities = [{"type": "clientInfo", "locale": "en-US", "country": "US", "platform": "Web", "timezone": "UTC"}]
    if mention:
        text = f"<at>{BOT['name']}</at> {text}"
        entities.insert(0, {"type": "mention", "text": f"<at>{BOT['name']}</at>", "mentioned": BOT})
    channel_data = {"tenant": {"id": TENANT_ID}}
    if kind == "channel":
        channel_data |= {"teamsChannelId": "19:channel@thread.tacv2", "teamsTeamId": "19:team@thread.tacv2",
                         "channel": {"id": "19:channel@thread.tacv2"}, "team": {"id": "19:team@thread.tacv2"}}
    return {
        "type": "message", "id": activity_id, "timestamp": datetime.now(UTC).isoformat(),
        "localTimestamp": datetime.now(UTC).isoformat(), "serviceUrl": service_url, "channelId": "msteams",
        "from": sender or user(), "recipient": BOT, "textFormat": "plain", "text": text, "locale": "en-US",
        "conversation": {"conversationType": kind, "tenantId": TENANT_ID, "id": conversation,
                         **({"isGroup": True} if kind != "personal" else {})},
        "entities": entities, "channelData": channel_data,
    }


@dataclass
class TeamsHarness:
    connector: FakeConnector
    identity: Identity
    runtime: Runtime
    url: str
    http: aiohttp.ClientSession
    custom: ScriptedAdapter
    gemini: ScriptedAdapter
    work: Work
    app: Any = None  # the aiohttp application (bot.server.build_web_app)

    async def send(self, body: dict[str, Any], *, token: str | None = "valid", url: str | None = None,
                   ) -> aiohttp.ClientResponse:
        """POST an activity; token "valid" signs one for its serviceUrl, None sends none, else it is sent as is."""
        if token == "valid":
            token = self.identity.token(body["serviceUrl"])
        headers = {"Content-Type": "application/json"} | ({"Authorization": f"Bearer {token}"} if token else {})
        async with self.http.post((url or self.url) + "/api/messages", data=json.dumps(body), headers=headers
                                  ) as response:
            await response.read()
            return response

    async def settled(self, within_s: float = 30.0) -> None:
        """Wait until no Teams answer is running."""
        deadline = time.monotonic() + within_s
        while self.work.in_flight:
            assert time.monotonic() < deadline, f"{self.work.in_flight} Teams answers still running"
            await asyncio.wait(set(self.work.tasks), timeout=max(deadline - time.monotonic(), 0))
            await asyncio.sleep(0)


@asynccontextmanager
async def teams_app(runtime: Runtime):
    """The real web app of `runtime`, served on 127.0.0.1; yields (url, its Teams work, the app)."""
    web_app = build_web_app(runtime)
    server = TestServer(web_app, host="127.0.0.1")
    await server.start_server()
    try:
        yield str(server.make_url("")).rstrip("/"), web_app[TEAMS_WORK], web_app
    finally:
        await server.close()


@asynccontextmanager
async def teams_harness(monkeypatch, *, custom: ScriptedAdapter | None = None,
                        gemini: ScriptedAdapter | None = None, sdk_env: dict[str, str] | None = None, **settings):
    for name, value in (SDK_ENV if sdk_env is None else sdk_env).items():
        monkeypatch.setenv(name, value)
    identity = Identity()
    identity.install(monkeypatch.setattr)
    connector = await FakeConnector().start()
    custom = custom or ScriptedAdapter("custom", default=Scripted("Your card is on its way.", "card_arrival", 0.93))
    gemini = gemini or ScriptedAdapter("gemini", default=Scripted("Gemini says hello.", "card_arrival", 0.8))
    values = dict(teams_service_url_hosts="127.0.0.1", llm_model_version="custom", fallback_order="custom,gemini",
                  benchmark_every_n=0, benchmark_sample=4) | settings
    runtime = await Runtime.create(Settings(**values), builders=builders(custom, gemini))
    http = aiohttp.ClientSession()
    try:
        async with teams_app(runtime) as (url, work, app):
            harness = TeamsHarness(connector, identity, runtime, url, http, custom, gemini, work, app)
            yield harness
            await harness.settled()
    finally:
        await http.close()
        await runtime.aclose()
        await connector.stop()
