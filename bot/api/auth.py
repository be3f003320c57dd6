"""Admin endpoints: `Authorization: Bearer $ADMIN_API_TOKEN`, and disabled outright while the token is unset."""

from __future__ import annotations

import hmac

from aiohttp import web

from bot.api.errors import ApiError

DISABLED = "admin endpoints are disabled: set ADMIN_API_TOKEN on the server to enable them"


def require_admin(request: web.Request, token: str | None) -> None:
    """Raise ApiError 403 while no token is configured, 401 when the request does not carry it."""
    if not token:
        raise ApiError(403, "admin_disabled", DISABLED)
    scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
    challenge = {"WWW-Authenticate": 'Bearer realm="bankbot-admin"'}
    if scheme.lower() != "bearer" or not presented.strip():
        raise ApiError(401, "unauthorized", "send Authorization: Bearer <ADMIN_API_TOKEN>", challenge)
    if not hmac.compare_digest(presented.strip().encode(), token.encode()):
        raise ApiError(401, "unauthorized", "the bearer token is not valid", challenge)


def require_bearer(request: web.Request, token: str | None, realm: str) -> None:
    """When `token` is set, the request must carry it as a Bearer token (401 otherwise); nothing when unset."""
    if not token:
        return
    scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(presented.strip().encode(), token.encode()):
        raise ApiError(401, "unauthorized", f"send Authorization: Bearer <{realm}>",
                       {"WWW-Authenticate": f'Bearer realm="bankbot-{realm.lower()}"'})
