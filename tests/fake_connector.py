"""A fake Bot Connector on 127.0.0.1, and the Bot Framework identity around it, for the Teams front end.

The connector records every POST /v3/conversations/{id}/activities[/{activityId}] (and PUT, the SDK's update)
with its bearer token, and answers 201 {"id": ...}. `Identity` is a test-generated RSA key: it signs the
inbound JWTs Teams would send, and stands in for the two calls that would leave the machine, the way the SDK's
own tests do: the JWKS lookup of JwtTokenValidator returns its public key, and MSAL's token request returns a
token it signs (so the connector can check what the bot presents).
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import jwt
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import rsa

APP_ID = "00000000-0000-0000-0000-0000000000a1"
TENANT_ID = "00000000-0000-0000-0000-0000000000f1"
BOT_ISSUER = "https://api.botframework.com"
CONNECTOR_AUDIENCE = "https://api.botframework.com"


@dataclass
class Identity:
    key: Any = field(default_factory=lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048))
    kid: str = "test-kid"
    _outbound: dict[str, str] = field(default_factory=dict)

    def token(self, service_url: str, *, audience: str = APP_ID, expires_in: float = 3600.0,
              key: Any = None, **claims: Any) -> str:
        """A Bot Framework channel token, as Teams sends in Authorization: Bearer."""
        now = int(time.time())
        payload = {"iss": BOT_ISSUER, "aud": audience, "serviceurl": service_url, "nbf": now - 5,
                   "exp": int(now + expires_in)} | claims
        return jwt.encode(payload, key or self.key, algorithm="RS256", headers={"kid": self.kid})

    def outbound_token(self, audience: str) -> str:
        """An app token for `audience`, signed once and reused, as MSAL caches the tokens it acquires."""
        if audience not in self._outbound:
            self._outbound[audience] = self._sign_outbound(audience)
        return self._outbound[audience]

    def _sign_outbound(self, audience: str) -> str:
        return jwt.encode({"iss": "https://login.microsoftonline.com/test", "aud": audience, "appid": APP_ID,
                           "exp": int(time.time()) + 3600}, self.key, algorithm="RS256")

    def verify_outbound(self, bearer: str | None) -> bool:
        try:
            jwt.decode((bearer or "").removeprefix("Bearer "), self.key.public_key(), algorithms=["RS256"],
                       audience=CONNECTOR_AUDIENCE)
            return True
        except jwt.PyJWTError:
            return False

    def install(self, setattr_: Callable[[Any, str, Any], None]) -> None:
        """Patch the JWKS lookup and MSAL's token request (pass monkeypatch.setattr, or setattr in a script)."""
        from microsoft_agents.authentication.msal import MsalAuth
        from microsoft_agents.hosting.core.authorization.jwt import JwtTokenValidator

        public_key = self.key.public_key()

        async def get_signing_key(jwks_uri: str, header: dict[str, Any]) -> Any:
            return public_key

        async def get_access_token(provider: Any, resource_url: str, scopes: list[str],
                                   force_refresh: bool = False) -> str:
            return self.outbound_token(resource_url)

        setattr_(JwtTokenValidator._jwk_client_manager, "get_signing_key", get_signing_key)
        setattr_(MsalAuth, "get_access_token", get_access_token)


@dataclass
class Posted:
    method: str  # POST or PUT
    conversation: str
    reply_to: str | None  # the activityId in the path: a reply in that message's chain
    activity: dict[str, Any]
    authorization: str | None
    query: dict[str, str]

    @property
    def type(self) -> str:
        return self.activity.get("type", "")

    @property
    def text(self) -> str:
        return self.activity.get("text") or ""

    def stream_type(self) -> str | None:
        for entity in self.activity.get("entities") or []:
            if entity.get("type") == "streaminfo":
                return entity.get("streamType")
        return None


@dataclass
class FakeConnector:
    posted: list[Posted] = field(default_factory=list)
    url: str = ""
    _changed: asyncio.Condition | None = None
    _runner: web.AppRunner | None = None
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))

    async def start(self) -> FakeConnector:
        app = web.Application(client_max_size=8 * 1024 * 1024)
        for method in ("POST", "PUT"):
            app.router.add_route(method, "/v3/conversations/{conversation}/activities", self._activity)
            app.router.add_route(method, "/v3/conversations/{conversation}/activities/{activity}", self._activity)
        self._changed = asyncio.Condition()
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}/"
        return self

    async def stop(self) -> None:
        if self._runner:
            await self._runner.cleanup()

    async def _activity(self, request: web.Request) -> web.Response:
        body = await request.json()
        posted = Posted(request.method, request.match_info["conversation"], request.match_info.get("activity"),
                        body, request.headers.get("Authorization"), dict(request.query))
        async with self._changed:
            self.posted.append(posted)
            self._changed.notify_all()
        return web.json_response({"id": posted.reply_to if request.method == "PUT" else f"act-{next(self._ids)}"},
                                 status=200 if request.method == "PUT" else 201)

    def messages(self) -> list[Posted]:
        return [p for p in self.posted if p.type == "message"]

    def typing(self) -> list[Posted]:
        return [p for p in self.posted if p.type == "typing"]

    async def wait_for(self, predicate: Callable[[FakeConnector], Any], within_s: float = 30.0) -> Any:
        """Wait until predicate(self) is truthy; returns its value."""
        async def until():
            async with self._changed:
                while not (value := predicate(self)):
                    await self._changed.wait()
                return value

        return await asyncio.wait_for(until(), within_s)
