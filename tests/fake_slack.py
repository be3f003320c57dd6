"""A fake Slack Web API on 127.0.0.1: answers the methods bankbot calls and records every call.

Point the bot at it with SLACK_API_URL=fake.api_url. Messages the bot posts are kept per channel, so
conversations.replies sees them like Slack would. Slash-command response URLs are served too
(`fake.response_url(name)`), and files_upload_v2's upload step.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

BOT_USER_ID = "UBOT"
BOT_ID = "BBOT"
TEAM_ID = "T0001"


@dataclass
class Call:
    method: str  # "chat.postMessage", or "response:<name>" for a response_url, or "upload"
    params: dict[str, Any]
    token: str | None = None


@dataclass
class FakeSlack:
    users: dict[str, dict[str, Any]] = field(default_factory=dict)  # users.info answers, by user id
    errors: dict[str, str] = field(default_factory=dict)  # method -> Slack error code it answers with
    rate_limited: dict[str, int] = field(default_factory=dict)  # method -> how many calls get HTTP 429 first
    held: dict[str, asyncio.Event] = field(default_factory=dict)  # method -> its calls hang until this is set
    calls: list[Call] = field(default_factory=list)
    messages: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # channel -> messages
    api_url: str = ""
    _changed: asyncio.Condition | None = None
    _runner: web.AppRunner | None = None
    _ts: itertools.count = field(default_factory=lambda: itertools.count(1))
    _envelopes: asyncio.Queue | None = None  # Socket Mode: envelopes to push to the connected app
    # What this workspace accepts (Slack's behaviour differs by plan and date):
    status_in_channels: bool = False  # assistant.threads.setStatus in channel threads (Slack since March 2026)
    data_visualization: bool = False  # the data_visualization block (June 2026); else invalid_blocks
    expire_stream_after: int | None = None  # chat.appendStream calls before the stream expires half-way
    # Installs in many workspaces: bot token -> team id (auth.test answers with it), OAuth code -> the install
    teams: dict[str, str] = field(default_factory=dict)
    oauth_codes: dict[str, dict[str, Any]] = field(default_factory=dict)
    _appends: int = 0

    async def start(self) -> FakeSlack:
        app = web.Application(client_max_size=32 * 1024 * 1024)
        app.router.add_post("/api/{method}", self._api)
        app.router.add_get("/api/{method}", self._api)
        app.router.add_post("/response/{name}", self._response)
        app.router.add_post("/upload/{file_id}", self._upload)
        app.router.add_get("/socket", self._socket)
        self._changed = asyncio.Condition()
        self._envelopes = asyncio.Queue()
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]
        self.base = f"http://127.0.0.1:{port}"
        self.api_url = f"{self.base}/api"
        return self

    async def stop(self) -> None:
        if self._runner:
            await self._runner.cleanup()

    def response_url(self, name: str) -> str:
        return f"{self.base}/response/{name}"

    # -- what tests read ------------------------------------------------------------------------------

    def calls_to(self, method: str) -> list[dict[str, Any]]:
        return [c.params for c in self.calls if c.method == method]

    def posts(self) -> list[dict[str, Any]]:
        return self.calls_to("chat.postMessage")

    async def wait_for(self, predicate: Callable[[FakeSlack], Any], within_s: float = 10.0) -> Any:
        """Wait until predicate(self) is truthy; returns its value."""
        async def until():
            async with self._changed:
                while not (value := predicate(self)):
                    await self._changed.wait()
                return value

        return await asyncio.wait_for(until(), within_s)

    def seed_message(self, channel: str, *, user: str, text: str, ts: str, thread_ts: str | None = None,
                     bot_id: str | None = None) -> None:
        """A message that was in the channel before the test (as if another user or bot had posted it)."""
        message = {"type": "message", "user": user, "text": text, "ts": ts}
        if thread_ts:
            message["thread_ts"] = thread_ts
        if bot_id:
            message["bot_id"] = bot_id
        self.messages.setdefault(channel, []).append(message)

    async def send_envelope(self, payload: dict[str, Any], *, envelope_id: str, kind: str = "events_api",
                            retry_attempt: int = 0) -> None:
        """Push a Socket Mode envelope to the connected app; its ack is recorded as a "socket_ack" call."""
        await self._envelopes.put({"envelope_id": envelope_id, "type": kind, "payload": payload,
                                   "accepts_response_payload": kind != "events_api",
                                   "retry_attempt": retry_attempt, "retry_reason": ""})

    # -- handlers -------------------------------------------------------------------------------------

    async def _record(self, call: Call) -> None:
        self.calls.append(call)
        async with self._changed:
            self._changed.notify_all()

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params: dict[str, Any] = dict(request.query)
        if request.can_read_body:
            if request.content_type == "application/json":
                params.update(await request.json())
            else:
                params.update(dict(await request.post()))
        token = request.headers.get("Authorization", "").removeprefix("Bearer ") or params.pop("token", None)
        if method in self.held:  # Slack's API hanging for this method
            await self.held[method].wait()
        if self.rate_limited.get(method):
            self.rate_limited[method] -= 1
            await self._record(Call(method + ":429", params, token))
            return web.json_response({"ok": False, "error": "ratelimited"}, status=429, headers={"Retry-After": "0"})
        if method in self.errors:
            await self._record(Call(method, params, token))
            return web.json_response({"ok": False, "error": self.errors[method]})
        refusal = self._refusal(method, params)
        if refusal:
            await self._record(Call(method, params, token))
            return web.json_response({"ok": False, "error": refusal})
        handler = getattr(self, "_" + method.replace(".", "_"), None)
        body = handler(params | {"token": token}) if handler else {}
        await self._record(Call(method, params, token))
        return web.json_response({"ok": True} | body)

    async def _response(self, request: web.Request) -> web.Response:
        await self._record(Call("response:" + request.match_info["name"], await request.json()))
        return web.Response(text="ok")

    async def _upload(self, request: web.Request) -> web.Response:
        data = await request.read()
        await self._record(Call("upload", {"file_id": request.match_info["file_id"], "size": len(data),
                                           "png": data[:8] == b"\x89PNG\r\n\x1a\n"}))
        return web.Response(text="OK")

    async def _socket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        await self._record(Call("socket_connect", dict(request.query)))
        await ws.send_json({"type": "hello", "num_connections": 1})

        async def pump():
            while True:
                await ws.send_json(await self._envelopes.get())

        pumping = asyncio.create_task(pump())
        try:
            async for frame in ws:
                if frame.type == web.WSMsgType.TEXT:
                    await self._record(Call("socket_ack", json.loads(frame.data)))
        finally:
            pumping.cancel()
        return ws

    # -- methods --------------------------------------------------------------------------------------

    def _refusal(self, method: str, params: dict[str, Any]) -> str | None:
        """The errors this workspace's settings above make Slack answer."""
        if method == "assistant.threads.setStatus" and not str(params.get("channel_id", "")).startswith("D") \
                and not self.status_in_channels:
            return "method_not_supported_for_channel_type"
        view = params.get("view") or {}
        view = json.loads(view) if isinstance(view, str) else view
        blocks = params.get("blocks") or view.get("blocks") or []
        blocks = json.loads(blocks) if isinstance(blocks, str) else blocks
        if not self.data_visualization and any(b.get("type") == "data_visualization" for b in blocks):
            return "invalid_blocks"
        if method == "chat.appendStream" and self.expire_stream_after is not None:
            self._appends += 1
            if self._appends > self.expire_stream_after:
                return "message_not_in_streaming_state"
        return None

    def _next_ts(self) -> str:
        return f"1700000000.{next(self._ts):06d}"

    def _auth_test(self, params):
        team = self.teams.get(params.get("token") or "", TEAM_ID)
        return {"user_id": BOT_USER_ID, "bot_id": BOT_ID, "team_id": team, "user": "bankbot", "team": "Bank",
                "url": "https://bank.slack.com/"}

    def _oauth_v2_access(self, params):
        """The code exchange of an install (grant_type=refresh_token: a rotated token's refresh)."""
        if params.get("grant_type") == "refresh_token":
            install = next(i for i in self.oauth_codes.values() if i.get("refresh_token") == params["refresh_token"])
            install["access_token"] = install["access_token"] + "-rotated"
            self.teams[install["access_token"]] = install["team"]["id"]
            return {"access_token": install["access_token"], "refresh_token": install["refresh_token"],
                    "expires_in": 43200, "token_type": "bot", "scope": install.get("scope", "")}
        return self.oauth_codes[params["code"]]

    def _apps_connections_open(self, params):
        return {"url": self.base.replace("http://", "ws://") + "/socket"}

    def _chat_postMessage(self, params):
        ts = self._next_ts()
        message = {"type": "message", "user": BOT_USER_ID, "bot_id": BOT_ID, "ts": ts,
                   "text": params.get("text", "")}
        if params.get("thread_ts"):
            message["thread_ts"] = params["thread_ts"]
        self.messages.setdefault(params["channel"], []).append(message)
        return {"channel": params["channel"], "ts": ts, "message": message}

    def _chat_postEphemeral(self, params):
        return {"message_ts": self._next_ts()}

    def _chat_startStream(self, params):
        return self._chat_postMessage(params | {"text": ""})

    def _chat_appendStream(self, params):
        return {"channel": params.get("channel"), "ts": params.get("ts")}

    def _chat_stopStream(self, params):
        return {"channel": params.get("channel"), "ts": params.get("ts")}

    def _conversations_replies(self, params):
        thread = params["ts"]
        found = [m for m in self.messages.get(params["channel"], [])
                 if m["ts"] == thread or m.get("thread_ts") == thread]
        return {"messages": sorted(found, key=lambda m: m["ts"]), "has_more": False}

    def _users_info(self, params):
        user = self.users.get(params["user"], {})
        return {"user": {"id": params["user"], "is_admin": False, "is_owner": False} | user}

    def _files_getUploadURLExternal(self, params):
        file_id = f"F{next(self._ts)}"
        return {"upload_url": f"{self.base}/upload/{file_id}", "file_id": file_id}

    def _files_completeUploadExternal(self, params):
        files = params.get("files")
        files = json.loads(files) if isinstance(files, str) else files
        return {"files": [{"id": f["id"], "title": f.get("title")} for f in files]}
