"""JSON error responses of the REST API: every refusal is a JSON body, never an HTML page or a 500."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web


class ApiError(Exception):
    """A refusal with its HTTP status, a stable machine-readable code and a message for people."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}

    def response(self, request_id: str | None = None) -> web.Response:
        return error_response(self.status, self.code, self.message, request_id=request_id, headers=self.headers)


def error_response(status: int, code: str, message: str, *, request_id: str | None = None,
                   headers: dict[str, str] | None = None) -> web.Response:
    body: dict[str, Any] = {"error": code, "message": message}
    if request_id is not None:
        body["request_id"] = request_id
    return json_response(body, status=status, headers=headers)


def json_response(data: Any, *, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(body=json.dumps(data, default=_default).encode(), status=status,
                        content_type="application/json", headers=headers)


def _default(value: Any) -> Any:
    """Datetimes (benchmark runs, switches) as ISO 8601; anything else as its string."""
    isoformat = getattr(value, "isoformat", None)
    return isoformat() if isoformat else str(value)
